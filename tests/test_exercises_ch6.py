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


def _gp(eps_fn, *, create_graph=True, after=None):
    """A penalty with the interpolation weight ``eps_fn(x_real)``; ``after`` edits the result."""

    def penalty(D, x_real, x_fake):
        eps = eps_fn(x_real)
        x_hat = (eps * x_real + (1 - eps) * x_fake).detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=create_graph)
        out = 10.0 * (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()
        return after(out, D, x_real) if after else out

    return penalty


def _per_sample(x):
    return torch.rand(x.shape[0], *[1] * (x.ndim - 1))


def test_6_1_rejects_weights_at_the_ends_or_near_one_end_and_a_shape_fixed_to_images():
    rejected(
        "6.1", _gp(lambda x: torch.randint(0, 2, (x.shape[0], *[1] * (x.ndim - 1))).float()), "U\\[0, 1\\]"
    )
    rejected("6.1", _gp(lambda x: 0.05 * _per_sample(x)), "U\\[0, 1\\]")
    rejected("6.1", _gp(lambda x: torch.rand(x.shape[0], 1, 1, 1)), "shape \\(5,\\)")


def test_6_1_rejects_side_effects_a_cut_graph_and_another_dtype():
    def in_place(out, D, x_real):
        x_real.mul_(0.5)
        return out

    def stale(out, D, x_real):
        out.backward(retain_graph=True)  # gradients left in D's parameters
        return out

    def frozen(out, D, x_real):
        D.requires_grad_(False)
        return out

    def eval_mode(out, D, x_real):
        D.eval()
        return out

    rejected("6.1", _gp(_per_sample, after=in_place), "in place")
    rejected("6.1", _gp(_per_sample, after=stale), "gradients")
    rejected("6.1", _gp(_per_sample, after=frozen))
    rejected("6.1", _gp(_per_sample, after=eval_mode), "eval mode")
    rejected("6.1", _gp(_per_sample, after=lambda out, D, x: out.double()), "float32")
    rejected("6.1", _gp(_per_sample, create_graph=False))
    rejected("6.1", _gp(_per_sample, after=lambda out, D, x: out.detach()))


def test_6_1_accepts_other_correct_forms():
    exercises.check("6.1", _gp(lambda x: torch.rand(x.shape[0]).view(-1, *[1] * (x.ndim - 1))))
    exercises.check("6.1", _gp(lambda x: torch.rand_like(x.flatten(1)[:, :1]).view(-1, *[1] * (x.ndim - 1))))


def test_6_2_rejects_cut_graphs_one_shape_only_another_dtype_and_inputs_changed():
    def right(r, f):
        return torch.relu(1 - r).mean() + torch.relu(1 + f).mean()

    rejected("6.2", lambda r, f: torch.tensor(right(r, f).item()), "graph")
    rejected("6.2", lambda r, f: torch.relu(1 - r).mean() + torch.relu(1 + f.detach()).mean(), "gradient")
    rejected("6.2", lambda r, f: torch.from_numpy(right(r, f).detach().numpy().copy()), "graph")
    rejected("6.2", lambda r, f: right(r, f).double(), "float32")
    rejected(
        "6.2", lambda r, f: torch.relu(1 - r[:, 0]).mean() + torch.relu(1 + f[:, 0]).mean()
    )  # (B, 1) only
    rejected("6.2", lambda r, f: right(r, f) + 0 * r.data.clamp_(max=0.5).sum(), "in place")


def test_6_2_accepts_other_correct_forms():
    exercises.check("6.2", lambda r, f: (1 - r).clamp(min=0).mean() + F.relu(1 + f).mean())
    exercises.check("6.2", lambda r, f: torch.relu(1 - r).mean(0) + torch.relu(1 + f).mean(0))  # shape (1,)


def test_6_3_rejects_log_sigmoid_and_cut_graphs():
    rejected("6.3", lambda r, f: -torch.log(torch.sigmoid(r - f)).mean())  # log 0 at a gap of 100
    rejected("6.3", lambda r, f: torch.log1p(torch.exp(f - r)).mean())  # exp overflows there
    rejected("6.3", lambda r, f: torch.tensor(F.softplus(f - r).mean().item()), "graph")
    rejected("6.3", lambda r, f: F.softplus(f.detach() - r).mean(), "gradient")


def test_6_3_accepts_other_correct_forms():
    exercises.check("6.3", lambda r, f: -F.logsigmoid(r - f).mean())
    exercises.check("6.3", lambda r, f: F.binary_cross_entropy_with_logits(r - f, torch.ones_like(r)))
