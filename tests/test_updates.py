"""One D update, one G update and the alternating loop, against hand-written updates."""

import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gan_tutorial import updates
from gan_tutorial.losses import d_loss_bce, get_loss
from gan_tutorial.models import toy_mlp
from gan_tutorial.updates import DivergenceError, DivergenceGuard, History, d_step, g_step, grad_norm, train


def _nets(seed: int = 0, latent_dim: int = 2, data_dim: int = 1):
    torch.manual_seed(seed)
    G = toy_mlp(latent_dim, data_dim, hidden=8, depth=1)
    D = toy_mlp(data_dim, 1, hidden=8, depth=1)
    return G, D


def _params(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_d_step_is_one_sgd_step_on_bce_and_leaves_g_alone():
    G, D = _nets()
    x_real, z = torch.randn(16, 1), torch.randn(16, 2)
    lr = 0.1
    # Reference: the same step written with PyTorch's cross-entropy and a manual update.
    D_ref = toy_mlp(1, 1, hidden=8, depth=1)
    D_ref.load_state_dict(D.state_dict())
    real_logits, fake_logits = D_ref(x_real), D_ref(G(z).detach())
    ref_loss = F.binary_cross_entropy_with_logits(
        real_logits, torch.ones_like(real_logits)
    ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    grads = torch.autograd.grad(ref_loss, list(D_ref.parameters()))
    expected = [p.detach() - lr * g for p, g in zip(D_ref.parameters(), grads, strict=True)]

    g_before = _params(G)
    stats = d_step(G, D, torch.optim.SGD(D.parameters(), lr=lr), x_real, z, "minimax")
    assert set(stats) == {"loss_D", "d_real", "d_fake", "grad_D"}
    assert all(not v.requires_grad for v in stats.values())
    torch.testing.assert_close(stats["loss_D"], ref_loss.detach())
    torch.testing.assert_close(stats["d_real"], torch.sigmoid(real_logits).mean().detach())
    torch.testing.assert_close(stats["grad_D"], torch.cat([g.flatten() for g in grads]).norm())
    for p, e in zip(D.parameters(), expected, strict=True):
        torch.testing.assert_close(p.detach(), e)
    assert _same(_params(G), g_before)
    assert all(p.grad is None for p in G.parameters())


@pytest.mark.parametrize("name", ["minimax", "nonsaturating", "lsgan"])
def test_g_step_moves_only_g_and_restores_d(name):
    G, D = _nets(seed=1)
    D[0].weight.requires_grad_(False)  # frozen on purpose: must stay frozen
    z = torch.randn(16, 2)
    d_before, g_before = _params(D), _params(G)
    loss = get_loss(name)
    lr = 0.05
    # Reference gradient of G's loss with respect to G's parameters.
    ref = loss.g(D(G(z)))
    grads = torch.autograd.grad(ref, list(G.parameters()))
    for p in D.parameters():
        p.grad = None
    stats = g_step(G, D, torch.optim.SGD(G.parameters(), lr=lr), z, name)
    assert set(stats) == {"loss_G", "d_fake_g", "grad_G"}
    torch.testing.assert_close(stats["loss_G"], ref.detach())
    for p, before, g in zip(G.parameters(), g_before, grads, strict=True):
        torch.testing.assert_close(p.detach(), before - lr * g)
    assert _same(_params(D), d_before)
    assert all(p.grad is None for p in D.parameters())
    assert D[0].weight.requires_grad is False
    assert D[0].bias.requires_grad is True and D[2].weight.requires_grad is True


def test_d_step_learns_the_closed_form_optimal_discriminator():
    # p_data = N(1, 1), p_g = N(-1, 1): D*(x) = p_data / (p_data + p_g) = sigmoid(2 x),
    # so a linear D (one logit w x + b) should reach w = 2, b = 0.
    torch.manual_seed(0)
    G = nn.Linear(1, 1)
    with torch.no_grad():
        G.weight.fill_(1.0)
        G.bias.fill_(-1.0)  # G(z) = z - 1 with z ~ N(0, 1)
    D = nn.Linear(1, 1)
    opt_D = torch.optim.Adam(D.parameters(), lr=0.05)
    for _ in range(400):
        d_step(G, D, opt_D, torch.randn(512, 1) + 1.0, torch.randn(512, 1), "minimax")
    assert D.weight.item() == pytest.approx(2.0, abs=0.25)
    assert D.bias.item() == pytest.approx(0.0, abs=0.2)


def test_train_runs_k_d_steps_per_g_step(monkeypatch):
    calls: list[str] = []
    real_d, real_g = updates.d_step, updates.g_step
    monkeypatch.setattr(updates, "d_step", lambda *a, **kw: calls.append("D") or real_d(*a, **kw))
    monkeypatch.setattr(updates, "g_step", lambda *a, **kw: calls.append("G") or real_g(*a, **kw))
    G, D = _nets(seed=2)
    seen: list[int] = []
    history = train(
        G,
        D,
        torch.optim.Adam(G.parameters(), 1e-3),
        torch.optim.Adam(D.parameters(), 1e-3),
        sample_real=lambda: torch.randn(8, 1),
        sample_z=lambda: torch.randn(8, 2),
        steps=7,
        k=3,
        log_every=3,
        callback=seen.append,
    )
    assert "".join(calls) == "DDDG" * 7
    assert seen == list(range(1, 8))
    assert history.step == [3, 6, 7]
    assert set(history.values) == {"loss_D", "d_real", "d_fake", "grad_D", "loss_G", "d_fake_g", "grad_G"}
    assert len(history["loss_D"]) == 3


def test_train_is_reproducible_and_learns_a_shift():
    # A seeded dry run: G(z) = w z + b must move its mean towards the data's mean (3).
    def run():
        torch.manual_seed(0)
        G, D = nn.Linear(1, 1), toy_mlp(1, 1, hidden=16, depth=1)
        history = train(
            G,
            D,
            torch.optim.Adam(G.parameters(), 0.02),
            torch.optim.Adam(D.parameters(), 0.02),
            sample_real=lambda: 3.0 + 0.5 * torch.randn(64, 1),
            sample_z=lambda: torch.randn(64, 1),
            steps=200,
            loss="nonsaturating",
            log_every=50,
        )
        return G.bias.item(), history["loss_D"]

    (b1, losses1), (b2, losses2) = run(), run()
    assert b1 == b2 and losses1 == losses2
    assert abs(b1 - 3.0) < 1.0


def test_bad_arguments():
    G, D = _nets()
    opt = torch.optim.SGD(G.parameters(), 0.1)
    with pytest.raises(ValueError, match="at least 1"):
        train(G, D, opt, opt, lambda: torch.randn(2, 1), lambda: torch.randn(2, 2), steps=1, k=0)
    with pytest.raises(ValueError, match="log_every"):
        train(G, D, opt, opt, lambda: torch.randn(2, 1), lambda: torch.randn(2, 2), steps=1, log_every=0)
    with pytest.raises(ValueError, match="known losses"):
        d_step(G, D, opt, torch.randn(2, 1), torch.randn(2, 2), "wasserstein")


def test_divergence_guard_and_history():
    guard = DivergenceGuard()
    guard.update({"loss_D": torch.tensor(1.0), "loss_G": torch.tensor(-0.5)}, step=1)
    guard.check(1)  # all finite: nothing happens
    guard.update({"loss_D": torch.tensor(float("nan")), "loss_G": torch.tensor(0.7)}, step=5)
    guard.update({"loss_D": torch.tensor(float("inf")), "loss_G": torch.tensor(0.7)}, step=6)  # not the first
    with pytest.raises(
        DivergenceError, match=r"loss_D became NaN or infinite at step 5 \(found at the check of step 7\)"
    ):
        guard.check(7)
    with pytest.raises(FloatingPointError) as err:
        guard.check(7, checkpoint="runs/x/checkpoint.pt")
    assert err.value.step == 5 and err.value.what == ("loss_D",) and "runs/x/checkpoint.pt" in str(err.value)
    guard.reset()
    guard.check(8)
    h = History()
    h.append(10, {"loss_D": torch.tensor(1.5)})
    assert h.step == [10] and h["loss_D"] == [1.5]


def test_guard_catches_a_nan_gradient_behind_a_finite_loss():
    guard = DivergenceGuard()
    stats = {"loss_D": torch.tensor(1.0), "loss_G": torch.tensor(0.5), "grad_D": torch.tensor(2.0)}
    guard.update({**stats, "grad_G": torch.tensor(float("nan"))}, step=3)
    with pytest.raises(DivergenceError, match=r"grad_G became NaN or infinite at step 3") as err:
        guard.check(3)
    assert err.value.what == ("grad_G",) and err.value.checked_at == 3
    copy = pickle.loads(pickle.dumps(err.value))  # it crosses process boundaries intact
    assert (str(copy), copy.step, copy.checked_at, copy.what) == (str(err.value), 3, 3, ("grad_G",))
    # the loop: a G whose output is finite and whose gradient is not (sqrt's slope at 0 is infinite)
    G, D = _nets(seed=4)

    class SqrtGate(nn.Module):
        def __init__(self):
            super().__init__()
            self.G, self.gate = G, nn.Parameter(torch.zeros(()))

        def forward(self, z):
            return self.G(z) + torch.sqrt(self.gate)  # adds 0; d/d gate is +inf

    G_gated = SqrtGate()
    opt_G, opt = torch.optim.SGD(G_gated.parameters(), lr=0.0), torch.optim.SGD(D.parameters(), lr=0.0)
    with pytest.raises(DivergenceError, match="grad_G"):
        train(
            G_gated, D, opt_G, opt, lambda: torch.randn(4, 1), lambda: torch.randn(4, 2), steps=3, log_every=2
        )


def test_grad_norm_is_the_norm_of_all_gradients():
    _, D = _nets()
    assert grad_norm(D).item() == 0.0
    d_loss_bce(D(torch.randn(4, 1)), D(torch.randn(4, 1))).backward()
    flat = torch.cat([p.grad.flatten() for p in D.parameters()])
    torch.testing.assert_close(grad_norm(D), flat.norm())


def test_d_step_with_r1_adds_the_penalty_at_the_real_images():
    """loss_D is the cross-entropy plus gamma/2 E||grad_x l(x_real)||^2; the step then follows
    the gradient of that sum. A D with batch norm, or a negative weight, is refused."""
    G, D = _nets(seed=6)
    x_real, z = torch.randn(16, 1), torch.randn(16, 2)
    x = x_real.clone().requires_grad_(True)
    real_logits, fake_logits = D(x), D(G(z).detach())
    (slope,) = torch.autograd.grad(real_logits.sum(), x)
    bce = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    penalty = 0.5 * 2.0 * slope.pow(2).sum(1).mean()
    stats = d_step(G, D, torch.optim.SGD(D.parameters(), lr=0.0), x_real, z, r1=2.0)
    torch.testing.assert_close(stats["r1"], penalty)
    torch.testing.assert_close(stats["loss_D"], (bce + penalty).detach())
    assert "r1" not in d_step(G, D, torch.optim.SGD(D.parameters(), lr=0.0), x_real, z)
    assert not x_real.requires_grad  # the caller's batch is left as it was

    D_bn = nn.Sequential(nn.Linear(1, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
    with pytest.raises(ValueError, match="batch norm"):
        d_step(G, D_bn, torch.optim.SGD(D_bn.parameters(), lr=0.0), x_real, z, r1=1.0)
    with pytest.raises(ValueError, match=">= 0"):
        d_step(G, D, torch.optim.SGD(D.parameters(), lr=0.0), x_real, z, r1=-1.0)
