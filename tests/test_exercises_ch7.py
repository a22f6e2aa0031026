"""Chapter 7's exercise checkers: the stored solutions pass (test_exercises.py), every correct
float32 form passes, and the mistakes a learner would make are rejected: wrong values, cut
graphs, inputs changed in place, a dtype changed, noise drawn instead of the noise given."""

import numpy as np
import pytest
import torch
from exercise_tools import rejected

from gan_tutorial import exercises

# -- correct forms that must pass ----------------------------------------------------------


@pytest.mark.parametrize(
    "exercise_id, answer",
    [
        ("7.1", lambda psi, phi, v: psi + (v * phi).sum(dim=1, keepdim=True)),
        ("7.1", lambda psi, phi, v: psi + torch.einsum("bf,bf->b", v, phi)[:, None]),
        ("7.1", lambda psi, phi, v: psi + (phi.unsqueeze(1) @ v.unsqueeze(2)).squeeze(2)),
        ("7.1", lambda psi, phi, v: torch.addcmul(torch.zeros_like(phi), v, phi).sum(-1, keepdim=True) + psi),
        ("7.2", lambda mu, lv: 0.5 * (mu**2 + lv.exp() - 1 - lv).sum(dim=1)),
        ("7.2", lambda mu, lv: -0.5 * torch.sum(1 + lv - mu.pow(2) - lv.exp(), dim=-1)),  # Kingma & Welling's
        (
            "7.2",
            lambda mu, lv: 0.5 * (mu**2 + torch.exp(0.5 * lv) ** 2 - 1 - torch.log(torch.exp(lv))).sum(1),
        ),
        ("7.3", lambda mu, lv, eps: mu + torch.exp(0.5 * lv) * eps),
        ("7.3", lambda mu, lv, eps: mu + lv.exp().sqrt() * eps),
        ("7.3", lambda mu, lv, eps: torch.addcmul(mu, (lv / 2).exp(), eps)),
    ],
)
def test_correct_forms_pass(exercise_id, answer, capsys):
    exercises.check(exercise_id, answer)
    assert capsys.readouterr().out.startswith(f"exercise {exercise_id}: correct")


# -- 7.1 ----------------------------------------------------------------------------------


def test_7_1_rejects_wrong_values_and_shapes():
    rejected("7.1", lambda psi, phi, v: (v * phi).sum(1, keepdim=True))  # the unconditional part forgotten
    rejected("7.1", lambda psi, phi, v: psi + (v * phi).sum(1), "shape")  # (B,) added to (B, 1)
    rejected("7.1", lambda psi, phi, v: psi * (v * phi).sum(1, keepdim=True))  # multiplied
    rejected("7.1", lambda psi, phi, v: psi + (v * phi).sum(0, keepdim=True).T[:6])  # summed over the batch
    rejected("7.1", lambda psi, phi, v: psi + phi @ v.T, "shape")  # every image with every class vector
    rejected("7.1", lambda psi, phi, v: psi + (v * phi).mean(1, keepdim=True))  # a mean, not an inner product


def test_7_1_rejects_cut_graphs():
    # a frozen projection: the class vectors would never learn
    rejected("7.1", lambda psi, phi, v: psi + (v.detach() * phi).sum(1, keepdim=True), "reaches v_y")
    rejected("7.1", lambda psi, phi, v: (psi + (v * phi).sum(1, keepdim=True)).detach(), "no gradient")

    def under_no_grad(psi, phi, v):
        with torch.no_grad():
            return psi + (v * phi).sum(1, keepdim=True)

    rejected("7.1", under_no_grad, "no gradient")

    def through_numpy(psi, phi, v):
        inner = np.sum(v.detach().numpy() * phi.detach().numpy(), axis=1, keepdims=True)
        return psi + torch.from_numpy(inner)

    rejected("7.1", through_numpy, "reaches")
    # detached, then marked as needing a gradient again: a leaf, still cut from the inputs
    rejected(
        "7.1",
        lambda psi, phi, v: (psi + (v * phi).sum(1, keepdim=True)).detach().requires_grad_(),
        "no gradient",
    )


def test_7_1_rejects_side_effects_and_dtypes():
    def in_place(psi, phi, v):
        phi = phi.detach()
        phi.mul_(v.detach())  # writes into the caller's phi through the shared storage
        return psi + phi.sum(1, keepdim=True)

    rejected("7.1", in_place, "in place|gradient")
    rejected("7.1", lambda psi, phi, v: (psi + (v * phi).sum(1, keepdim=True)).float(), "float64")
    rejected("7.1", lambda psi, phi, v: (psi + (v * phi).sum(1, keepdim=True)).double(), "float32")


def test_7_1_rejects_rules_that_hold_only_on_one_shape():
    # written for 40 features: the second call has 7
    rejected("7.1", lambda psi, phi, v: psi + (v[:, :40] * phi[:, :40]).sum(1, keepdim=True)[:6].expand(6, 1))


# -- 7.2 ----------------------------------------------------------------------------------


def test_7_2_rejects_wrong_values_and_shapes():
    rejected("7.2", lambda mu, lv: (mu**2 + lv.exp() - 1 - lv).sum(1))  # the half forgotten
    rejected("7.2", lambda mu, lv: 0.5 * (mu**2 + (0.5 * lv).exp() - 1 - lv).sum(1))  # sigma for sigma^2
    rejected("7.2", lambda mu, lv: 0.5 * (mu**2 + lv.exp() - 1 - lv).mean(1))  # a mean over dimensions
    rejected("7.2", lambda mu, lv: 0.5 * (mu**2 + lv.exp() - 1 + lv).sum(1))  # the log's sign
    rejected("7.2", lambda mu, lv: 0.5 * (mu**2 + lv.exp() - 1 - lv).sum(), "shape")  # summed over the batch
    rejected("7.2", lambda mu, lv: 0.5 * (mu**2 + lv.exp() - 1 - lv).sum(0), "shape")  # over the rows
    # KL(p || q), the reversed divergence
    rejected("7.2", lambda mu, lv: 0.5 * ((1 + mu**2) / lv.exp() - 1 + lv).sum(1))


def test_7_2_rejects_cut_graphs_side_effects_and_dtypes():
    rejected("7.2", lambda mu, lv: 0.5 * (mu**2 + lv.detach().exp() - 1 - lv).sum(1), "gradient")
    rejected("7.2", lambda mu, lv: 0.5 * (mu.detach() ** 2 + lv.exp() - 1 - lv).sum(1), "reaches mu")
    rejected(
        "7.2",
        lambda mu, lv: torch.tensor(0.5 * (mu**2 + lv.exp() - 1 - lv).sum(1).tolist()),
        "no gradient|float",
    )

    def in_place(mu, lv):
        mu = mu.detach()
        mu.pow_(2)  # the caller's mu, squared
        return 0.5 * (mu + lv.exp() - 1 - lv).sum(1)

    rejected("7.2", in_place, "in place|gradient")
    rejected("7.2", lambda mu, lv: 0.5 * (mu**2 + lv.exp() - 1 - lv).sum(1).float(), "float64")


# -- 7.3 ----------------------------------------------------------------------------------


def test_7_3_rejects_wrong_values():
    rejected("7.3", lambda mu, lv, eps: mu + lv.exp() * eps)  # the variance, not the std
    rejected("7.3", lambda mu, lv, eps: mu + lv * eps)  # log variance as a scale
    rejected("7.3", lambda mu, lv, eps: mu + torch.exp(0.5 * lv))  # the noise forgotten


def test_7_3_rejects_cut_graphs():
    rejected("7.3", lambda mu, lv, eps: (mu + (0.5 * lv).exp() * eps).detach(), "no gradient")
    # no gradient to logvar: sigma frozen
    rejected("7.3", lambda mu, lv, eps: mu + torch.exp(0.5 * lv).detach() * eps, "reaches logvar")
    # the whole draw detached and marked again: no gradient reaches mu either
    rejected(
        "7.3", lambda mu, lv, eps: (mu + torch.exp(0.5 * lv) * eps).detach().requires_grad_(), "no gradient"
    )
    # sigma computed in numpy
    rejected(
        "7.3",
        lambda mu, lv, eps: mu + torch.tensor(np.exp(0.5 * lv.detach().numpy())) * eps,
        "reaches logvar",
    )
    # noise of its own, drawn by torch.distributions
    rejected("7.3", lambda mu, lv, eps: torch.distributions.Normal(mu, torch.exp(0.5 * lv)).sample())


def test_7_3_rejects_side_effects_noise_of_its_own_and_dtypes():
    def in_place(mu, lv, eps):
        eps.mul_(torch.exp(0.5 * lv))  # the right value, but the caller's eps is overwritten
        return mu + eps

    rejected("7.3", in_place, "changed its input eps in place")

    rejected("7.3", lambda mu, lv, eps: mu + torch.exp(0.5 * lv) * torch.randn_like(eps))  # noise not given
    rejected("7.3", lambda mu, lv, eps: (mu + torch.exp(0.5 * lv) * eps).float(), "float64")

    def flag_dropped(mu, lv, eps):
        z = mu + torch.exp(0.5 * lv) * eps
        lv.requires_grad_(False)
        return z

    rejected("7.3", flag_dropped, "requires_grad")
