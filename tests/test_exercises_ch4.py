"""Chapter 4's exercise checkers: the stored solutions pass (test_exercises.py), and the mistakes
a learner would make are rejected; correct answers in float32 pass."""

import math

import numpy as np
import pytest
import torch
from exercise_tools import rejected

from gan_tutorial import exercises, latent

# -- chapter 4 ----------------------------------------------------------------------------


def test_4_1_rejects_the_convolution_formula_a_missing_padding_and_n_strides():
    rejected("4.1", lambda n, k, s, p, o=0: (n + 2 * p - k) // s + 1, match="convolution's formula")
    rejected("4.1", lambda n, k, s, p, o=0: (n - 1) * s - 2 * p + k, match="output padding")
    rejected("4.1", lambda n, k, s, p, o=0: n * s - 2 * p + k + o, match="n - 1 strides")


def test_4_1_rejects_padding_times_stride_and_a_float():
    rejected("4.1", lambda n, k, s, p, o=0: (n - 1) * s - p * s + k + o, match="nn.ConvTranspose2d gives")
    rejected("4.1", lambda n, k, s, p, o=0: (n - 1) * s - 2.0 * p + k + o, match="a count is an int")
    rejected("4.1", lambda n, k, s, p, o=0: torch.tensor((n - 1) * s - 2 * p + k + o), match="an int")


def test_4_1_accepts_numpy_integers():
    exercises.check("4.1", lambda n, k, s, p, o=0: np.int64((n - 1) * s - 2 * p + k + o))


def test_4_2_rejects_k_not_squared_biases_per_input_and_an_ignored_flag():
    rejected(
        "4.2", lambda c_in, c_out, k, bias=True: c_in * c_out * k + (c_out if bias else 0), match="k x k"
    )
    rejected(
        "4.2",
        lambda c_in, c_out, k, bias=True: c_in * c_out * k * k + (c_in if bias else 0),
        match="output channel",
    )
    rejected("4.2", lambda c_in, c_out, k, bias=True: c_in * c_out * k * k + c_out, match="bias=False")


def test_4_2_rejects_a_float_count():
    rejected("4.2", lambda c_in, c_out, k, bias=True: c_in * c_out * k**2.0 + c_out * bias, match="an int")


def test_4_3_rejects_lerp_sqrt_d_and_unit_norm():
    rejected("4.3", lambda z0, z1: (z0 + z1) / 2, match="norm")
    rejected("4.3", lambda z0, z1: (z0 + z1) / (z0 + z1).norm() * math.sqrt(len(z0)), match="norm")
    rejected("4.3", lambda z0, z1: (z0 + z1) / (z0 + z1).norm(), match="norm")
    rejected("4.3", lambda z0, z1: (z0 - z1) / (z0 - z1).norm() * z0.norm(), match="direction")


def _by_the_angle(z0, z1):
    omega = torch.acos(z0 @ z1 / (z0.norm() * z1.norm()))
    return torch.sin(omega / 2) / torch.sin(omega) * (z0 + z1)


def test_4_3_rejects_the_angle_the_package_in_place_sums_and_other_dtypes():
    rejected("4.3", _by_the_angle, match="NaN")  # 0 / 0 for a code and itself
    rejected("4.3", lambda z0, z1: latent.slerp(z0, z1, 3)[1], match="latent.slerp")

    def in_place(z0, z1):
        s = z0.add_(z1)
        return s / s.norm() * z1.norm()

    rejected("4.3", in_place, match="in place")
    rejected("4.3", lambda z0, z1: ((z0 + z1) / (z0 + z1).norm() * z0.norm()).float(), match="float64")
    rejected("4.3", lambda z0, z1: ((z0 + z1) / (z0 + z1).norm() * z0.norm()).double(), match="float32")


def test_4_3_accepts_the_other_end_for_the_norm():
    exercises.check("4.3", lambda z0, z1: (z0 + z1) * (z1.norm() / (z0 + z1).norm()))


def test_4_3_closed_form_is_the_package_slerp():
    z0, z1 = torch.randn(2, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    z1 = z1 / z1.norm() * z0.norm()
    torch.testing.assert_close(_by_the_angle(z0, z1), latent.slerp(z0, z1, 3)[1])


def test_4_4_rejects_the_mean_age_a_missing_every_and_the_approximation():
    rejected("4.4", lambda beta, every=1: every / (1 - beta), match="mean age")
    rejected("4.4", lambda beta, every=1: math.log(0.5) / math.log(beta), match="each update spans")
    rejected("4.4", lambda beta, every=1: every * math.log(2) / (1 - beta), match="approximation")


def test_4_4_rejects_rounding_up_and_its_message_gives_no_answer():
    err = rejected(
        "4.4", lambda beta, every=1: every * math.ceil(math.log(0.5) / math.log(beta)), match="rounding"
    )
    assert "692.8" not in str(err) and "693.1" not in str(err)  # the exact value is not printed
    # the digits a message shows are not enough: 4 significant digits of the right value fail
    rejected("4.4", lambda beta, every=1: float(f"{every * math.log(0.5) / math.log(beta):.3g}"))


def test_4_4_accepts_float32():
    def in_float32(beta, every=1):
        return every * torch.log(torch.tensor(0.5)) / torch.log(torch.tensor(beta))

    exercises.check("4.4", in_float32)


def _codes(G, x, mode="eval", steps=300, lr=0.05, weights=False, restore=True, clear=True):
    was_training = G.training
    if mode == "eval":
        G.eval()
    z = torch.zeros(len(x), G.latent_dim, requires_grad=True)
    opt = torch.optim.Adam([z, *G.parameters()] if weights else [z], lr=lr)
    for _ in range(steps):
        loss = (G(z) - x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    if restore:
        G.train(was_training)
    if clear:
        G.zero_grad(set_to_none=True)
    return z.detach()


def test_4_5_rejects_training_mode_moving_g_and_too_few_steps():
    rejected("4.5", lambda G, x: _codes(G, x, mode="train"), match="G.eval")
    rejected("4.5", lambda G, x: _codes(G, x, weights=True), match="codes z only")
    rejected("4.5", lambda G, x: _codes(G, x, steps=10, lr=0.01), match="more steps")
    rejected("4.5", lambda G, x: torch.zeros(len(x), G.latent_dim), match="more steps")


def test_4_5_rejects_codes_searched_in_training_mode_on_a_copy():
    import copy

    def on_a_copy(G, x):  # G itself untouched, but its copy normalises over the batch
        G_copy = copy.deepcopy(G).train()
        return _codes(G_copy, x, mode="train")

    rejected("4.5", on_a_copy, match="more steps")


def test_4_5_rejects_g_left_in_eval_mode_frozen_or_with_gradients():
    rejected("4.5", lambda G, x: _codes(G, x, restore=False), match="eval mode")
    rejected("4.5", lambda G, x: _codes(G, x, clear=False), match="gradients on G's weights")

    def frozen(G, x):
        G.requires_grad_(False)
        return _codes(G, x)

    rejected("4.5", frozen, match="require gradients")


def test_4_5_rejects_changed_images_float64_codes_and_the_codes_of_the_source():
    def in_place(G, x):
        return _codes(G, x.mul_(0.5).add_(0.5))  # to [0, 1], in the caller's tensor

    rejected("4.5", in_place, match="in place")
    rejected("4.5", lambda G, x: _codes(G, x).double(), match="float64")
    # the codes were drawn afresh, from the system's entropy: no seed in the source rebuilds them
    for seed in (0, 4, 45):
        rejected("4.5", lambda G, x, seed=seed: latent.codes(8, 16, seed=seed), match="more steps")


def test_4_5_accepts_the_gradient_of_z_alone():
    def by_grad(G, x):
        was = G.training
        G.eval()
        z = torch.zeros(len(x), G.latent_dim, requires_grad=True)
        opt = torch.optim.Adam([z], lr=0.05)
        for _ in range(300):
            (g,) = torch.autograd.grad((G(z) - x).pow(2).mean(), z)
            z.grad = g
            opt.step()
        G.train(was)
        return z.detach()

    exercises.check("4.5", by_grad)


@pytest.mark.parametrize("run", range(3))
def test_4_5_stored_solution_passes_on_fresh_codes(run):
    exercises.check("4.5", exercises.solution("4.5"))
