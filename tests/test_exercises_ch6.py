"""Chapter 6's exercise checkers: the stored solutions pass (test_exercises.py), and the mistakes
a learner would make are rejected."""

import torch
import torch.nn.functional as F
from exercise_tools import rejected

from gan_tutorial import exercises

# -- chapter 6 ----------------------------------------------------------------------------


def test_6_1_rejects_a_weight_per_pixel_a_norm_over_one_axis_and_another_lambda():
    def per_pixel(D, x_real, x_fake):
        eps = torch.rand_like(x_real)  # one weight per pixel: off the segments
        x_hat = (eps * x_real + (1 - eps) * x_fake).detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
        return 10 * (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()

    def norm_dim1(D, x_real, x_fake):
        eps = torch.rand(x_real.shape[0], *[1] * (x_real.ndim - 1))
        x_hat = (eps * x_real + (1 - eps) * x_fake).detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
        return 10 * (grad.norm(2, dim=1) - 1).pow(2).mean()  # over the channels only

    def lambda_one(D, x_real, x_fake):
        return exercises.solution("6.1")(D, x_real, x_fake) / 10

    rejected("6.1", per_pixel, "segment|weight")
    rejected("6.1", norm_dim1)
    rejected("6.1", lambda_one)


def test_6_2_rejects_the_wgan_loss_and_a_flipped_sign():
    rejected("6.2", lambda r, f: f.mean() - r.mean() + 2)  # no relu: WGAN's loss plus the margins
    rejected("6.2", lambda r, f: torch.relu(1 + r).mean() + torch.relu(1 - f).mean())
    rejected("6.2", lambda r, f: torch.relu(1 - torch.cat([r, -f])).mean())  # one mean over both batches


def test_6_3_rejects_unpaired_and_independent_forms():

    rejected("6.3", lambda r, f: F.softplus(f.mean() - r.mean()))  # difference of the means
    rejected("6.3", lambda r, f: F.softplus(-r).mean() + F.softplus(f).mean())  # plain cross-entropy
    rejected("6.3", lambda r, f: F.softplus(r - f).mean())  # roles swapped
