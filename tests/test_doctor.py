"""The doctor: each check works alone, the gradient-penalty probe names each departure, and
diagnose validates its inputs and runs on a trainer."""

import math

import pytest
import torch
from torch import nn

from gan_tutorial import doctor
from gan_tutorial.bugs.wgan_gp import gp_on_critic, gp_per_coordinate
from gan_tutorial.config import TrainConfig
from gan_tutorial.doctor import (
    Finding,
    check_batch_norm_with_penalty,
    check_codes,
    check_d_rates_fakes_real,
    check_d_wins,
    check_data_range,
    check_error,
    check_finite,
    check_gradient_penalty,
    check_loss_sign,
    check_no_gradient,
    check_train_mode,
    diagnose,
    report,
)
from gan_tutorial.models import DCGANGenerator, MLPGenerator, toy_mlp
from gan_tutorial.trainer import Trainer
from gan_tutorial.updates import History


def _history(**values: list[float]) -> History:
    n = len(next(iter(values.values())))
    return History(list(range(1, n + 1)), {k: list(v) for k, v in values.items()})


def _healthy(n: int = 30, **changes: list[float]) -> History:
    """Monitors of a run near its equilibrium: D(x) about 0.55 on reals and 0.45 on fakes."""
    values = {
        "loss_D": [1.3 + 0.01 * (i % 3) for i in range(n)],
        "loss_G": [0.8 - 0.01 * (i % 2) for i in range(n)],
        "d_real": [0.55 + 0.02 * (i % 2) for i in range(n)],
        "d_fake": [0.45 - 0.02 * (i % 2) for i in range(n)],
        "grad_D": [0.5 + 0.1 * (i % 4) for i in range(n)],
        "grad_G": [0.3 + 0.05 * (i % 3) for i in range(n)],
    }
    values.update(changes)
    return _history(**values)


# ---------------------------------------------------------------------------------------
# Each check alone
# ---------------------------------------------------------------------------------------


def test_check_finite():
    assert check_finite(_healthy()) is None
    bad = _healthy()
    bad.values["loss_D"][6] = math.inf
    bad.values["grad_D"][6] = math.nan
    finding = check_finite(bad)
    assert finding.code == "non_finite"
    assert "loss_D = inf" in finding.evidence and "grad_D = nan" in finding.evidence
    assert "step 7" in finding.evidence and "d_real = " in finding.evidence


def test_check_loss_sign():
    negative = _healthy(5, loss_D=[1.0, 0.5, -0.2, -1.5, -3.0])
    finding = check_loss_sign(negative, "nonsaturating")
    assert finding.code == "negative_loss" and "step 3" in finding.evidence and "-3" in finding.evidence
    assert check_loss_sign(negative) is not None  # the default loss is train's, a cross-entropy
    assert check_loss_sign(negative, "wgan-gp") is None  # a critic's loss may be negative
    assert check_loss_sign(_healthy(), "nonsaturating") is None
    assert check_loss_sign(_healthy(loss_G=[-0.7] * 30), "minimax") is None  # log(1 - D) is <= 0
    assert check_loss_sign(_healthy(loss_G=[-0.7] * 30), "nonsaturating").code == "negative_loss"
    assert check_loss_sign(_healthy(loss_D=[0.3] * 29 + [-0.1]), "lsgan").code == "negative_loss"


def test_check_no_gradient():
    frozen = _healthy(grad_G=[0.0] * 30)
    finding = check_no_gradient(frozen, "G")
    assert finding.code == "no_gradient_G" and "30 of 30" in finding.evidence
    assert check_no_gradient(frozen, "D") is None
    assert check_no_gradient(_healthy(grad_D=[0.0] * 20 + [0.4] * 10), "D").code == "no_gradient_D"
    assert check_no_gradient(_healthy(grad_D=[0.0] * 3 + [0.4] * 27), "D") is None  # skipped fp16 steps
    with pytest.raises(ValueError, match="'G' or 'D'"):
        check_no_gradient(frozen, "g")


def test_check_d_rates_fakes_real():
    fooled = _healthy(
        d_real=[0.6 + 0.013 * i for i in range(30)], d_fake=[0.5 + 0.0165 * i for i in range(30)]
    )
    finding = check_d_rates_fakes_real(fooled)
    assert finding.code == "d_rates_fakes_real" and "calls the fakes real" in finding.evidence
    preferring = _healthy(d_real=[0.3] * 30, d_fake=[0.6] * 30)
    assert "d_fake > d_real at 27 of the 27" in check_d_rates_fakes_real(preferring, "minimax").evidence
    assert check_d_rates_fakes_real(_healthy()) is None
    assert check_d_rates_fakes_real(preferring, "wgan-gp") is None  # raw scores: skipped
    assert check_d_rates_fakes_real(_history(d_real=[0.3] * 4, d_fake=[0.99] * 4)) is None  # too short


def test_check_d_wins():
    wins = _healthy(
        d_real=[min(0.995, 0.6 + 0.05 * i) for i in range(30)],
        d_fake=[max(0.005, 0.4 - 0.05 * i) for i in range(30)],
        loss_G=[0.9 + 0.15 * i for i in range(30)],
    )
    finding = check_d_wins(wins)
    assert finding.code == "d_wins" and "loss_G rose" in finding.evidence
    falling = _healthy(d_real=wins["d_real"], d_fake=wins["d_fake"], loss_G=wins["loss_G"][::-1])
    assert check_d_wins(falling) is None
    assert check_d_wins(_healthy()) is None
    assert check_d_wins(wins, "lsgan") is None


def _tanh_G() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2), nn.Tanh())


def test_check_data_range():
    x = torch.rand(256, 2)  # in [0, 1]
    finding = check_data_range(x, _tanh_G())
    assert finding.code == "data_range" and "Tanh" in finding.evidence and "Normalize" in finding.cause
    assert check_data_range(2 * x - 1, _tanh_G()) is None
    assert "out of G's reach" in check_data_range(255 * x, _tanh_G()).evidence
    assert check_data_range(x, MLPGenerator(8, hidden=(16,))) is not None  # Tanh, then a reshape
    assert check_data_range(x, toy_mlp(4, 2)) is None  # a linear output has no range to miss
    sigmoid_G = nn.Sequential(nn.Linear(4, 2), nn.Sigmoid())
    assert check_data_range(2 * x - 1, sigmoid_G).code == "data_range"
    assert check_data_range(x, sigmoid_G) is None
    nan = x.clone()
    nan[0, 0] = math.nan
    assert "NaN" in check_data_range(nan, _tanh_G()).evidence
    with pytest.raises(TypeError, match="float tensor"):
        check_data_range([[0.5, 0.5]], _tanh_G())


def test_check_batch_norm_with_penalty():
    bn = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
    finding = check_batch_norm_with_penalty(bn, gradient_penalty=True)
    assert finding.code == "batch_norm_with_penalty" and "BatchNorm1d" in finding.evidence
    assert check_batch_norm_with_penalty(bn, "wgan-gp") is not None
    assert check_batch_norm_with_penalty(bn, "wgan", gradient_penalty=False) is None  # weight clipping
    assert check_batch_norm_with_penalty(bn, "nonsaturating") is None
    assert check_batch_norm_with_penalty(toy_mlp(2, 1), "wgan-gp", gradient_penalty=True) is None


def test_check_train_mode():
    G = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    D = nn.Sequential(nn.Linear(2, 8), nn.Dropout(0.3), nn.Linear(8, 1))
    assert check_train_mode(G, D) is None  # train mode, as built
    G.eval()
    finding = check_train_mode(G, D)
    assert finding.code == "eval_mode" and "num_batches_tracked = 0" in finding.evidence
    D.eval()
    assert "D has 1 dropout" in check_train_mode(None, D).evidence
    G.train()
    G(torch.randn(16, 2))  # one batch in train mode, then eval for sampling: not a finding
    G.eval()
    assert check_train_mode(G) is None
    assert check_train_mode(toy_mlp(2, 2).eval(), toy_mlp(2, 1).eval()) is None  # nothing mode-dependent


def test_check_codes():
    G = MLPGenerator(100, hidden=(16,))
    finding = check_codes(torch.randn(4, 100, 1, 1), G)
    assert (
        finding.code == "code_shape" and "(4, 100, 1, 1)" in finding.evidence and "400x1" in finding.evidence
    )
    assert check_codes(torch.randn(4, 100), G) is None
    assert "extra dimensions" in check_codes(torch.randn(4, 1, 100), G).evidence
    assert check_codes(torch.randn(4, 64), G) is not None
    assert check_codes(torch.randn(4, 100, 1, 1), DCGANGenerator(100)) is None  # a convolutional G
    with pytest.raises(TypeError, match="codes"):
        check_codes([0.0] * 100, G)


def test_check_error():
    finding = check_error(ValueError("z must have shape (B, 100)"))
    assert finding.code == "run_failed" and "ValueError: z must have shape (B, 100)" in finding.evidence
    assert "non_finite" in check_error(FloatingPointError("nan")).cause
    with pytest.raises(TypeError):
        check_error("it broke")


def test_report():
    assert report([]) == "no problem found"
    a, b = Finding("a", "seen a", "cause a", "fix a"), Finding("b", "seen b", "cause b", "fix b")
    assert report([a]) == "1 problem found:\n\n" + str(a)
    assert report([a, b]).startswith("2 problems found:") and str(b) in report([a, b])
    assert str(a) == "[a] seen a\n  likely cause: cause a\n  fix: fix a"


# ---------------------------------------------------------------------------------------
# The gradient penalty probe
# ---------------------------------------------------------------------------------------


def _penalty(eps_shape, norm, create_graph=True, lam=10.0, at_reals=False):
    """A penalty function with the given weight shape and norm (``norm(grad) -> per-sample norms``)."""

    def fn(D, x_real, x_fake):
        eps = torch.rand(eps_shape(x_real))
        x_hat = x_real.clone() if at_reals else eps * x_real + (1 - eps) * x_fake
        x_hat.requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=create_graph)
        return lam * ((norm(grad) - 1) ** 2).mean()

    return fn


def _per_sample(x):
    return (len(x),) + (1,) * (x.ndim - 1)


def _flat_norm(g):
    return g.flatten(1).norm(dim=1)


def test_check_gradient_penalty_accepts_a_correct_one():
    assert check_gradient_penalty(gp_on_critic) is None
    assert check_gradient_penalty(_penalty(_per_sample, _flat_norm)) is None
    assert check_gradient_penalty(gp_on_critic, sample_shape=(2,)) is None
    assert check_gradient_penalty(_penalty(_per_sample, _flat_norm, lam=1.0), lam=1.0) is None


def test_check_gradient_penalty_rejects_a_per_pixel_weight():
    finding = check_gradient_penalty(_penalty(lambda x: x.shape, _flat_norm))
    assert finding.code == "gp_interpolates" and "one weight per coordinate" in finding.evidence
    assert check_gradient_penalty(gp_per_coordinate, sample_shape=(2,)).code == "gp_interpolates"


def test_check_gradient_penalty_rejects_a_norm_over_one_dimension():
    finding = check_gradient_penalty(_penalty(_per_sample, lambda g: g.norm(2, dim=1)))
    assert finding.code == "gp_formula" and "the norm over dimension 1 only" in finding.evidence


def test_check_gradient_penalty_rejects_other_departures():
    no_graph = check_gradient_penalty(_penalty(_per_sample, _flat_norm, create_graph=False))
    assert no_graph.code == "gp_no_graph" and "create_graph=True" in no_graph.fix
    weight = check_gradient_penalty(_penalty(_per_sample, _flat_norm, lam=1.0))
    assert weight.code == "gp_formula" and "lambda = 1 instead of 10" in weight.evidence
    at_reals = check_gradient_penalty(_penalty(_per_sample, _flat_norm, at_reals=True))
    assert at_reals.code == "gp_interpolates" and "only on the real and fake" in at_reals.evidence
    shared = check_gradient_penalty(_penalty(lambda x: (1,) * x.ndim, _flat_norm))
    assert shared.code == "gp_interpolates" and "same weight" in shared.evidence
    normal = check_gradient_penalty(_normal_eps)
    assert normal.code == "gp_interpolates" and "beyond the ends" in normal.evidence

    def per_sample_values(D, x_real, x_fake):
        return _penalty(_per_sample, _flat_norm)(D, x_real, x_fake).expand(len(x_real))

    assert "not one number" in check_gradient_penalty(per_sample_values).evidence


def _normal_eps(D, x_real, x_fake):
    eps = torch.randn(_per_sample(x_real))  # a normal weight: points beyond the segment's ends
    x_hat = (eps * x_real + (1 - eps) * x_fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
    return 10 * ((_flat_norm(grad) - 1) ** 2).mean()


def test_check_gradient_penalty_leaves_the_global_stream_alone_and_explains_a_crash():
    torch.manual_seed(5)
    state = torch.get_rng_state()
    check_gradient_penalty(gp_on_critic)
    assert torch.equal(torch.get_rng_state(), state)
    with pytest.raises(ValueError, match="sample_shape="):
        check_gradient_penalty(lambda D, x_real, x_fake: D(x_real.view(-1, 2)).sum())
    with pytest.raises(TypeError, match="fn"):
        check_gradient_penalty("gp")
    with pytest.raises(ValueError, match="lam"):
        check_gradient_penalty(gp_on_critic, lam=0)


# ---------------------------------------------------------------------------------------
# diagnose's inputs
# ---------------------------------------------------------------------------------------


def test_diagnose_validates_its_inputs():
    with pytest.raises(TypeError, match="History"):
        diagnose({"loss_D": [1.0]})
    with pytest.raises(ValueError, match="other lengths"):
        diagnose(History([1, 2], {"loss_D": [1.0]}))
    with pytest.raises(ValueError, match="none of the monitors"):
        diagnose(History([1], {"accuracy": [0.5]}))
    with pytest.raises(ValueError, match="unknown loss"):
        diagnose(_healthy(), loss="hinge-ish")


def test_a_short_history_is_a_finding_unless_something_explains_it():
    assert [f.code for f in diagnose(History())] == ["too_few_steps"]
    assert "0 logged step" in diagnose(History())[0].evidence
    assert [f.code for f in diagnose(_healthy(3))] == ["too_few_steps"]
    assert [f.code for f in diagnose(History(), error=RuntimeError("boom"))] == ["run_failed"]
    nan = _healthy(2, loss_D=[1.3, math.nan])
    assert [f.code for f in diagnose(nan)] == ["non_finite"]
    assert diagnose(_healthy(doctor.MIN_STEPS)) == []


def test_diagnose_probes_a_penalty_function_on_the_data_shape():
    x = torch.randn(16, 2)
    findings = diagnose(_healthy(), loss="wgan-gp", data=x, gradient_penalty=gp_per_coordinate)
    assert [f.code for f in findings] == ["gp_interpolates"]
    assert diagnose(_healthy(), loss="wgan-gp", data=x, gradient_penalty=gp_on_critic) == []


def test_a_trainers_run_is_diagnosed_with_its_config():
    x = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    t = Trainer(TrainConfig(model="dcgan-bn-g", loss="wgan-gp", dropout=0.0, batch_size=16, log_every=1), x)
    t.run(steps=6, progress=False)
    codes = [f.code for f in doctor.diagnose_trainer(t)]
    assert "negative_loss" not in codes  # a critic's loss below 0 is no bug
    half = Trainer(TrainConfig(batch_size=16, log_every=1), (x + 1) / 2)  # images in [0, 1]
    half.run(steps=5, progress=False)
    assert "data_range" in [f.code for f in doctor.diagnose_trainer(half)]
