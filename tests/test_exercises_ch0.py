"""Chapter 0's exercise checkers: the stored solutions pass (test_exercises.py), and the mistakes
a learner would make are rejected."""

import functools
import math
import operator

import torch
from exercise_tools import rejected

from gan_tutorial.exercises import chapter0

# -- 0.1 ----------------------------------------------------------------------------------


def test_0_1_rejects_in_place_min_max_and_clipping():
    rejected("0.1", lambda x: x.add_(1).div_(2), match="in place")
    rejected("0.1", lambda x: (x - x.min()) / (x.max() - x.min()), match="faint image")
    rejected("0.1", lambda x: x.clamp(0, 1))
    rejected("0.1", lambda x: (x + 1) * 127.5)  # pixel values, not [0, 1]


def test_0_1_rejects_a_range_test_a_rounding_to_bytes_and_a_changed_dtype():
    # "already in [0, 1]?": right on every image with a negative pixel, wrong on a grey one
    rejected("0.1", lambda x: x if x.min() >= 0 else (x + 1) / 2, match="no pixel below 0")
    rejected("0.1", lambda x: ((x + 1) * 127.5).round() / 255)  # exact on the 256 levels only
    rejected("0.1", lambda x: ((x + 1) / 2).double(), match="dtype")
    rejected("0.1", lambda x: ((x + 1) / 2).float(), match="dtype torch.float32 for a torch.float64")
    # in place only on images, not on the first, 1-D input
    rejected("0.1", lambda x: x.add_(1).div_(2) if x.ndim > 1 else (x + 1) / 2, match="in place")


# -- 0.2 ----------------------------------------------------------------------------------


def _ring(n, generator, modes=8, noise=0.01, angle_of=lambda i: 2 * math.pi * i / 8, randn=torch.randn):
    i = torch.randint(0, modes, (n,), generator=generator)
    a = angle_of(i.double())
    centres = torch.stack([torch.cos(a), torch.sin(a)], dim=1).float()
    return centres + noise * randn(n, 2, generator=generator)


def test_0_2_rejects_collapse_no_noise_wrong_scale_wrong_angles():
    rejected("0.2", lambda n, g: _ring(n, g, modes=7), match="8 modes received")  # randint(0, 7)
    rejected("0.2", lambda n, g: _ring(n, g, modes=1), match="8 modes received")  # one mode
    rejected("0.2", lambda n, g: _ring(n, g, noise=0.0), match="no noise")
    rejected("0.2", lambda n, g: _ring(n, g, noise=0.1), match="standard deviation")  # sqrt of the variance
    rejected("0.2", lambda n, g: _ring(n, g, noise=0.01**2), match="standard deviation")
    rejected("0.2", lambda n, g: _ring(n, g, randn=torch.rand), match="randn")  # uniform in [0, 0.01)
    rejected("0.2", lambda n, g: _ring(n, g, angle_of=lambda i: 45.0 * i), match="angles")  # degrees
    rejected("0.2", lambda n, g: _ring(n, g, angle_of=lambda i: 2 * math.pi * i / 7), match="angles")


def test_0_2_rejects_uniform_noise_of_the_right_size():
    def uniform(n, generator):  # centred, standard deviation 0.01, but not Gaussian
        x = _ring(n, generator, noise=0.0)
        return x + 0.01 * math.sqrt(3) * (2 * torch.rand(n, 2, generator=generator) - 1)

    rejected("0.2", uniform, match="Gaussian")


def test_0_2_rejects_the_global_generator_reseeding_and_copies_of_the_generator():
    rejected("0.2", lambda n, g: _ring(n, None), match="global generator")

    def reseeds_global(n, generator):  # repeatable, and different per seed, but not from `generator`
        torch.manual_seed(generator.initial_seed())
        return _ring(n, None)

    def reseeds_given(n, generator):
        generator.manual_seed(0)
        return _ring(n, generator)

    def copies(n, generator):  # a fresh generator with the same seed: the stream starts over every call
        return _ring(n, torch.Generator().manual_seed(generator.initial_seed()))

    rejected("0.2", reseeds_global, match="global generator")
    rejected("0.2", reseeds_given, match="seeded differently gave the same points")
    rejected("0.2", copies, match="two calls in a row")


def test_0_2_rejects_float64_shared_noise_and_modes_in_a_pattern():
    rejected("0.2", lambda n, g: _ring(n, g).double(), match="float32")

    def shared_noise(n, generator):  # one draw for both coordinates: the noise lies along (1, 1)
        return _ring(n, generator, noise=0.0) + 0.01 * torch.randn(n, 1, generator=generator)

    def in_turn(n, generator):  # modes 0, 1, ..., 7, 0, 1, ...: even counts, no randomness
        a = 2 * math.pi * (torch.arange(n) % 8).double() / 8
        return torch.stack([a.cos(), a.sin()], 1).float() + 0.01 * torch.randn(n, 2, generator=generator)

    def sorted_modes(n, generator):
        i = torch.randint(0, 8, (n,), generator=generator).sort().values
        a = 2 * math.pi * i.double() / 8
        return torch.stack([a.cos(), a.sin()], 1).float() + 0.01 * torch.randn(n, 2, generator=generator)

    def equal_blocks(n, generator):  # n // 8 points per mode: n points only when 8 divides n
        a = 2 * math.pi * torch.arange(8).repeat_interleave(n // 8).double() / 8
        x = torch.stack([a.cos(), a.sin()], 1).float()
        return x + 0.01 * torch.randn(len(x), 2, generator=generator)

    rejected("0.2", shared_noise, match="covariance")
    rejected("0.2", in_turn, match="pattern")
    rejected("0.2", sorted_modes, match="pattern")
    rejected("0.2", equal_blocks, match="shape")


# -- 0.3 ----------------------------------------------------------------------------------


def test_0_3_rejects_mb_elements_and_a_fixed_four_bytes():
    rejected("0.3", lambda shape, dtype: math.prod(shape) * 4 / 1e6, match="exercise 0.3")
    rejected("0.3", lambda shape, dtype: math.prod(shape) / 2**20, match="counts elements")
    rejected("0.3", lambda shape, dtype: math.prod(shape) * 4 / 2**20, match="uint8")
    err = rejected(
        "0.3", lambda shape, dtype: math.prod(shape) * torch.empty((), dtype=dtype).element_size() / 1e6
    )
    assert "2**20" in err.hint


def test_0_3_rejects_a_table_of_six_dtypes_float_only_sizes_and_a_product_without_start():
    sizes = {
        torch.float32: 4,
        torch.uint8: 1,
        torch.float16: 2,
        torch.bfloat16: 2,
        torch.float64: 8,
        torch.int64: 8,
    }
    rejected("0.3", lambda shape, dtype: math.prod(shape) * sizes.get(dtype, 4) / 2**20, match="bool")
    rejected("0.3", lambda shape, dtype: math.prod(shape) * torch.finfo(dtype).bits / 8 / 2**20)  # ints fail
    rejected(
        "0.3",
        lambda shape, dtype: functools.reduce(operator.mul, shape) * dtype.itemsize / 2**20,
        match="raised TypeError",  # reduce() of the empty shape of a scalar
    )


# -- 0.4 ----------------------------------------------------------------------------------


def _fit(x, loss="nll", steps=1000, lr=0.05):
    mu, log_sigma = torch.zeros((), requires_grad=True), torch.zeros((), requires_grad=True)
    opt = torch.optim.Adam([mu, log_sigma], lr=lr)
    for _ in range(steps):
        z = (x - mu) / log_sigma.exp()
        value = {
            "nll": 0.5 * z**2 + log_sigma,
            "no_log_sigma": 0.5 * z**2,  # the normalising term forgotten
            "mse": (x - mu) ** 2,  # fits the mean only
        }[loss].mean()
        opt.zero_grad()
        value.backward()
        opt.step()
    return mu.item(), log_sigma.exp().item()


def test_0_4_rejects_a_missing_log_sigma_a_squared_error_and_too_few_steps():
    rejected("0.4", lambda x: _fit(x, "no_log_sigma"), match="far too large")
    rejected("0.4", lambda x: _fit(x, "mse"), match="did not move")
    rejected("0.4", lambda x: _fit(x, steps=20, lr=0.01), match="maximum likelihood gives")


def test_0_4_rejects_the_closed_form_where_training_is_asked():
    rejected("0.4", lambda x: (x.mean().item(), x.std(unbiased=False).item()), match="no optimiser step")
    rejected("0.4", lambda x: (x.mean().item(), x.var().item()), match="no optimiser step")

    def trains_then_answers_the_closed_form(x):
        _fit(x, steps=5)
        return x.mean().item(), x.std(unbiased=False).item()

    rejected("0.4", trains_then_answers_the_closed_form, match="not the values its optimiser reached")


def test_0_4_rejects_a_fit_that_standardises_the_samples_in_place():
    def standardises(x):
        mu, sigma = chapter0.fit_gaussian(x)
        x.sub_(mu).div_(sigma)
        return mu, sigma

    rejected("0.4", standardises, match="in place")


def test_optimizer_steps_records_each_step_and_the_weights_after_it():
    w = torch.zeros(2, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.5)
    with chapter0.optimizer_steps() as steps:
        for _ in range(3):
            opt.zero_grad()
            (w - 1).pow(2).sum().backward()
            opt.step()
    assert len(steps) == 3 and all(s.optimizer is opt and s.params[0] is w for s in steps)
    assert [s.values[0][0].item() for s in steps] == [1.0, 1.0, 1.0]  # lr 0.5 on (w - 1)^2 jumps to 1
    opt.step()  # outside: not recorded
    assert len(steps) == 3
