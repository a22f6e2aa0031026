"""Chapter 4's exercise checkers: the stored solutions pass (test_exercises.py), and the mistakes
a learner would make are rejected."""

import math

import torch
from exercise_tools import rejected

from gan_tutorial import latent

# -- chapter 4 ----------------------------------------------------------------------------


def test_4_1_rejects_the_convolution_formula_a_missing_padding_and_n_strides():
    rejected("4.1", lambda n, k, s, p, o=0: (n + 2 * p - k) // s + 1, match="convolution's formula")
    rejected("4.1", lambda n, k, s, p, o=0: (n - 1) * s - 2 * p + k, match="output padding")
    rejected("4.1", lambda n, k, s, p, o=0: n * s - 2 * p + k + o, match="n - 1 strides")


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


def test_4_3_rejects_lerp_sqrt_d_and_unit_norm():
    rejected("4.3", lambda z0, z1: (z0 + z1) / 2, match="norm")
    rejected("4.3", lambda z0, z1: (z0 + z1) / (z0 + z1).norm() * math.sqrt(len(z0)), match="norm")
    rejected("4.3", lambda z0, z1: (z0 + z1) / (z0 + z1).norm(), match="norm")
    rejected("4.3", lambda z0, z1: (z0 - z1) / (z0 - z1).norm() * z0.norm(), match="direction")


def test_4_3_closed_form_is_the_package_slerp():
    z0, z1 = torch.randn(2, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    z1 = z1 / z1.norm() * z0.norm()
    torch.testing.assert_close(_midpoint_closed_form(z0, z1), latent.slerp(z0, z1, 3)[1])


def _midpoint_closed_form(z0, z1):
    omega = torch.acos(z0 @ z1 / (z0.norm() * z1.norm()))
    return torch.sin(omega / 2) / torch.sin(omega) * (z0 + z1)


def test_4_4_rejects_the_mean_age_a_missing_every_and_the_approximation():
    rejected("4.4", lambda beta, every=1: every / (1 - beta), match="mean age")
    rejected("4.4", lambda beta, every=1: math.log(0.5) / math.log(beta), match="each update spans")
    rejected("4.4", lambda beta, every=1: every * math.log(2) / (1 - beta), match="approximation")


def _codes(G, x, mode="eval", steps=300, lr=0.05, weights=False):
    if mode == "eval":
        G.eval()
    z = torch.zeros(len(x), G.latent_dim, requires_grad=True)
    opt = torch.optim.Adam([z, *G.parameters()] if weights else [z], lr=lr)
    for _ in range(steps):
        loss = (G(z) - x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return z.detach()


def test_4_5_rejects_training_mode_moving_g_and_too_few_steps():
    rejected("4.5", lambda G, x: _codes(G, x, mode="train"), match="G.eval")
    rejected("4.5", lambda G, x: _codes(G, x, weights=True), match="codes z only")
    rejected("4.5", lambda G, x: _codes(G, x, steps=10, lr=0.01), match="more steps")
    rejected("4.5", lambda G, x: torch.zeros(len(x), G.latent_dim), match="more steps")
