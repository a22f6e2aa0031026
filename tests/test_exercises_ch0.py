"""Chapter 0's exercise checkers: the stored solutions pass (test_exercises.py), and the mistakes
a learner would make are rejected."""

import math

import torch
from exercise_tools import rejected

# -- chapter 0 ----------------------------------------------------------------------------


def test_0_1_rejects_in_place_min_max_and_clipping():
    rejected("0.1", lambda x: x.add_(1).div_(2), match="in place")
    rejected("0.1", lambda x: (x - x.min()) / (x.max() - x.min()), match="faint image")
    rejected("0.1", lambda x: x.clamp(0, 1))
    rejected("0.1", lambda x: (x + 1) * 127.5)  # pixel values, not [0, 1]


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
    rejected("0.2", lambda n, g: _ring(n, None), match="generators seeded alike")  # ignores the generator


def test_0_2_rejects_uniform_noise_of_the_right_size():
    def uniform(n, generator):  # centred, standard deviation 0.01, but not Gaussian
        x = _ring(n, generator, noise=0.0)
        return x + 0.01 * math.sqrt(3) * (2 * torch.rand(n, 2, generator=generator) - 1)

    rejected("0.2", uniform, match="Gaussian")


def test_0_3_rejects_mb_elements_and_a_fixed_four_bytes():
    rejected("0.3", lambda shape, dtype: math.prod(shape) * 4 / 1e6, match="exercise 0.3")
    rejected("0.3", lambda shape, dtype: math.prod(shape) / 2**20, match="counts elements")
    rejected("0.3", lambda shape, dtype: math.prod(shape) * 4 / 2**20, match="uint8")
    err = rejected(
        "0.3", lambda shape, dtype: math.prod(shape) * torch.empty((), dtype=dtype).element_size() / 1e6
    )
    assert "2**20" in err.hint


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
    rejected("0.4", lambda x: (x.mean().item(), x.var().item()), match="maximum likelihood gives")  # variance
