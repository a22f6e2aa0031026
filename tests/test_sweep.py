"""Sweeps (gan_tutorial.sweep) and the ensemble of toy MLPs they train (gan_tutorial.models.ensemble):
designs, a results file that survives a kill, summaries, and ensembles that equal separate runs."""

import dataclasses
import json
import math
import statistics
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from gan_tutorial import data, sweep, updates  # noqa: E402
from gan_tutorial.config import RECIPES, TrainConfig  # noqa: E402
from gan_tutorial.data import MNISTNotFoundError, ensure_mnist  # noqa: E402
from gan_tutorial.metrics import judge  # noqa: E402
from gan_tutorial.models import toy_mlp  # noqa: E402
from gan_tutorial.models.ensemble import MLPEnsemble, ensemble  # noqa: E402
from gan_tutorial.sweep import Results, Sweep, ToySetting, Trial  # noqa: E402

#: A toy setting small enough for a test: a few milliseconds per step.
TINY = ToySetting(hidden=16, depth=2, batch_size=64, steps=20)


@pytest.fixture(autouse=True)
def one_thread():
    """These networks are tiny: one thread is as fast as two, and many times faster when other
    work keeps the cores busy (threads then wait for each other at every operation)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------------------------------
# The ensemble
# ---------------------------------------------------------------------------------------


def seeded_mlps(seeds, *args):
    mlps = []
    for seed in seeds:
        torch.manual_seed(seed)
        mlps.append(toy_mlp(*args))
    return mlps


def test_ensemble_outputs_equal_the_members_outputs():
    mlps = seeded_mlps([0, 1, 2], 2, 1, 16, 3)
    ens = MLPEnsemble(mlps)
    assert len(ens) == 3 and ens.in_dim == 2 and ens.out_dim == 1
    x = torch.randn(3, 10, 2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ens(x), torch.stack([mlp(x[e]) for e, mlp in enumerate(mlps)]))
    for e, mlp in enumerate(mlps):
        member = ens.member(e)
        assert member.state_dict().keys() == mlp.state_dict().keys()
        for a, b in zip(member.state_dict().values(), mlp.state_dict().values(), strict=True):
            assert torch.equal(a, b)
    # the weights were copied: training the ensemble leaves the original nets alone
    before = mlps[0][0].weight.clone()
    with torch.no_grad():
        ens.weights[0].add_(1.0)
    assert torch.equal(mlps[0][0].weight, before)


def test_ensemble_from_seeds_has_no_side_effect():
    state = torch.random.get_rng_state()
    ens = ensemble([3, 5], 2, 2, hidden=8, depth=2)
    assert torch.equal(torch.random.get_rng_state(), state), "the global generator was touched"
    for e, mlp in enumerate(seeded_mlps([3, 5], 2, 2, 8, 2)):
        for a, b in zip(ens.member(e).parameters(), mlp.parameters(), strict=True):
            assert torch.equal(a, b)


def test_ensemble_refuses_mismatched_members_and_inputs():
    with pytest.raises(ValueError, match="same architecture"):
        MLPEnsemble([toy_mlp(2, 1, 16, 2), toy_mlp(2, 1, 8, 2)])
    with pytest.raises(ValueError, match="at least one member"):
        MLPEnsemble([])
    with pytest.raises(ValueError, match="not a toy_mlp"):
        MLPEnsemble([torch.nn.Linear(2, 1)])
    ens = ensemble([0, 1], 2, 1, 8, 2)
    with pytest.raises(ValueError, match=r"expand\(2, -1, -1\)"):
        ens(torch.randn(5, 2))
    with pytest.raises(ValueError, match="out of range"):
        ens.member(2)


def test_training_the_ensemble_with_adam_equals_training_the_members_apart():
    """Notebook 02, cell 21: the loss over E x B outputs is (1/E) sum_e loss_e, and Adam cancels 1/E."""
    E, B, ring = 3, 64, data.ring8()
    Gs, Ds = seeded_mlps(range(E), 2, 2, 32, 2), seeded_mlps(range(10, 10 + E), 2, 1, 32, 2)
    G_ens, D_ens = MLPEnsemble(Gs), MLPEnsemble(Ds)

    def adam(module):
        return torch.optim.Adam(module.parameters(), lr=1e-3, betas=(0.5, 0.999))

    opts = [(adam(g), adam(d)) for g, d in zip(Gs, Ds, strict=True)]
    opt_G, opt_D = adam(G_ens), adam(D_ens)
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        x_real = ring.sample(E * B, gen).view(E, B, 2)
        z_d, z_g = torch.randn(E, B, 2, generator=gen), torch.randn(E, B, 2, generator=gen)
        updates.d_step(G_ens, D_ens, opt_D, x_real, z_d, "nonsaturating")
        updates.g_step(G_ens, D_ens, opt_G, z_g, "nonsaturating")
        for e, (g, d) in enumerate(zip(Gs, Ds, strict=True)):
            updates.d_step(g, d, opts[e][1], x_real[e], z_d[e], "nonsaturating")
            updates.g_step(g, d, opts[e][0], z_g[e], "nonsaturating")
    z = torch.randn(E, 100, 2, generator=gen)
    with torch.no_grad():
        torch.testing.assert_close(
            G_ens(z), torch.stack([g(z[e]) for e, g in enumerate(Gs)]), atol=1e-4, rtol=0
        )
        torch.testing.assert_close(
            D_ens(z), torch.stack([d(z[e]) for e, d in enumerate(Ds)]), atol=1e-4, rtol=0
        )


# ---------------------------------------------------------------------------------------
# Designs
# ---------------------------------------------------------------------------------------


def test_grid_is_the_product_of_the_axes():
    base = TrainConfig()
    trials = sweep.grid(base, lr_D=[2e-4, 4e-4], k=[1, 2])
    assert [t.name for t in trials] == [
        "lr_D=0.0002,k=1",
        "lr_D=0.0002,k=2",
        "lr_D=0.0004,k=1",
        "lr_D=0.0004,k=2",
    ]
    assert [(t.config.lr_D, t.config.k) for t in trials] == [(2e-4, 1), (2e-4, 2), (4e-4, 1), (4e-4, 2)]
    assert all(t.config.lr_G == base.lr_G for t in trials)  # the other fields are the base's
    assert sweep.grid(base) == [Trial("base", base)]
    assert [t.name for t in sweep.grid(TINY, loss=["lsgan"])] == ["loss=lsgan"]


def test_grid_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match=r"no field lr_d; its fields: .*lr_D"):
        sweep.grid(TrainConfig(), lr_d=[1e-3])
    with pytest.raises(ValueError, match="trial k=0: k must be at least 1"):
        sweep.grid(TrainConfig(), k=[1, 0])
    with pytest.raises(ValueError, match="more than once"):
        sweep.grid(TrainConfig(), k=[1, 1])
    with pytest.raises(ValueError, match=r"list of values.*k=\[2\]"):
        sweep.grid(TrainConfig(), k=2)
    with pytest.raises(ValueError, match="no values"):
        sweep.grid(TrainConfig(), k=[])
    with pytest.raises(ValueError, match="config instance"):
        sweep.grid(TrainConfig, k=[1])


def test_one_at_a_time_varies_each_axis_alone():
    base = TrainConfig()  # lr_D 2e-4, k 1
    trials = sweep.one_at_a_time(base, lr_D=[1e-4, 2e-4, 4e-4], k=[1, 2])
    assert [t.name for t in trials] == ["base", "lr_D=0.0001", "lr_D=0.0004", "k=2"]
    fields = [f.name for f in dataclasses.fields(base)]
    for t in trials[1:]:
        changed = [f for f in fields if getattr(t.config, f) != getattr(base, f)]
        assert len(changed) == 1
    assert sweep.one_at_a_time(base) == [Trial("base", base)]


def test_random_search_is_reproducible_and_stays_in_its_space():
    space = {"lr_G": (1e-4, 1e-2, "log"), "k": [1, 2, 3], "hidden": (16, 128)}
    trials = sweep.random_search(TINY, space, n=8, seed=3)
    assert trials == sweep.random_search(TINY, space, n=8, seed=3)
    assert trials != sweep.random_search(TINY, space, n=8, seed=4)
    assert len({t.name for t in trials}) == 8
    for t in trials:
        assert 1e-4 <= t.config.lr_G <= 1e-2 and float(f"{t.config.lr_G:.3g}") == t.config.lr_G
        assert t.config.k in (1, 2, 3)
        assert isinstance(t.config.hidden, int) and 16 <= t.config.hidden <= 128
        assert t.name == f"lr_G={t.config.lr_G!r},k={t.config.k},hidden={t.config.hidden}"
    # log-uniform: about as many draws below 1e-3 as above it
    lrs = [t.config.lr_G for t in sweep.random_search(TINY, {"lr_G": (1e-4, 1e-2, "log")}, n=200, seed=0)]
    assert 70 < sum(lr < 1e-3 for lr in lrs) < 130


def test_random_search_errors():
    with pytest.raises(ValueError, match="fewer than n=5"):
        sweep.random_search(TINY, {"k": [1, 2]}, n=5)
    with pytest.raises(ValueError, match='"log"'):
        sweep.random_search(TINY, {"lr_G": (1e-3, 1e-4, "log")}, n=1)
    with pytest.raises(ValueError, match="low > 0"):
        sweep.random_search(TINY, {"lr_G": (0.0, 1e-3, "log")}, n=1)
    with pytest.raises(ValueError, match="no field"):
        sweep.random_search(TINY, {"lr": [1e-3]}, n=1)


# ---------------------------------------------------------------------------------------
# The results file
# ---------------------------------------------------------------------------------------


class CountingRunner:
    """Metrics computed from the config and seed; raises KeyboardInterrupt on call ``stop_at``."""

    def __init__(self, stop_at=None):
        self.calls, self.stop_at = [], stop_at

    def __call__(self, config, seed):
        self.calls.append((config.k, seed))
        if len(self.calls) == self.stop_at:
            raise KeyboardInterrupt
        return {"fd": 10.0 * config.k + seed, "modes": 10 - seed, "diverged": False}


def without_seconds(results):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in results.rows]


def test_a_killed_sweep_resumes_with_the_missing_runs_only(tmp_path):
    trials, seeds = sweep.grid(TrainConfig(), k=[1, 2]), [0, 1]
    straight = Sweep(tmp_path / "straight.jsonl", CountingRunner()).run(trials, seeds)

    path = tmp_path / "sweep.jsonl"
    first = CountingRunner(stop_at=3)
    with pytest.raises(KeyboardInterrupt):
        Sweep(path, first).run(trials, seeds)
    assert len(path.read_text().splitlines()) == 2  # the two finished runs, written as they ended

    second = CountingRunner()
    resumed = Sweep(path, second).run(trials, seeds)
    assert second.calls == [(2, 0), (2, 1)]  # the run that was interrupted, and the one never started
    assert without_seconds(resumed) == without_seconds(straight)
    assert [(r["trial"], r["seed"]) for r in resumed.rows] == [
        ("k=1", 0), ("k=1", 1), ("k=2", 0), ("k=2", 1)
    ]  # fmt: skip
    row = resumed.rows[0]
    assert row["config"] == json.loads(json.dumps(dataclasses.asdict(trials[0].config)))
    assert row["fd"] == 10.0 and row["seconds"] >= 0

    third = CountingRunner()
    again = Sweep(path, third).run(trials, seeds)
    assert third.calls == [] and again.rows == resumed.rows  # nothing left to run
    assert Sweep(path).results().rows == resumed.rows


def test_a_truncated_last_line_is_ignored_and_its_run_redone(tmp_path):
    path = tmp_path / "sweep.jsonl"
    trials = sweep.grid(TrainConfig(), k=[1])
    Sweep(path, CountingRunner()).run(trials, [0, 1])
    text = path.read_text()
    path.write_text(text[: len(text) - 20])  # the second row cut mid-write
    runner = CountingRunner()
    with pytest.warns(UserWarning, match="cut short"):
        results = Sweep(path, runner).run(trials, [0, 1])
    assert runner.calls == [(1, 1)]
    assert [r["seed"] for r in results.rows] == [0, 1]
    assert [json.loads(line)["seed"] for line in path.read_text().splitlines()] == [0, 1]  # a valid file
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Sweep(path, runner).run(trials, [0, 1])  # nothing cut now: no warning


def test_a_row_written_without_its_newline_is_kept(tmp_path):
    path = tmp_path / "sweep.jsonl"
    trials = sweep.grid(TrainConfig(), k=[1])
    Sweep(path, CountingRunner()).run(trials, [0])
    path.write_text(path.read_text().rstrip("\n"))  # killed between the row and its newline
    runner = CountingRunner()
    Sweep(path, runner).run(trials, [0, 1])
    assert runner.calls == [(1, 1)]
    assert [json.loads(line)["seed"] for line in path.read_text().splitlines()] == [0, 1]


def test_the_same_name_with_another_config_is_refused(tmp_path):
    path = tmp_path / "sweep.jsonl"
    Sweep(path, CountingRunner()).run([Trial("mine", TrainConfig(k=1))], [0])
    with pytest.raises(ValueError, match=r"another config \(it differs in k\).*another sweep"):
        Sweep(path, CountingRunner()).run([Trial("mine", TrainConfig(k=2))], [0])


def test_a_row_from_before_a_field_existed_still_counts(tmp_path):
    path = tmp_path / "sweep.jsonl"
    Sweep(path, CountingRunner()).run([Trial("mine", TrainConfig())], [0])
    row = json.loads(path.read_text())
    del row["config"]["checkpoint_every"]  # as if written by a version without that field
    path.write_text(json.dumps(row) + "\n")
    runner = CountingRunner()
    Sweep(path, runner).run([Trial("mine", TrainConfig())], [0])  # the field at its default: the same run
    assert runner.calls == []
    with pytest.raises(ValueError, match="differs in checkpoint_every"):
        Sweep(path, runner).run([Trial("mine", TrainConfig(checkpoint_every=5))], [0])


def test_bad_files_and_arguments_are_refused(tmp_path):
    path = tmp_path / "sweep.jsonl"
    path.write_text(
        '{"trial": "a", "seed": 0, "config": {}}\nnot json\n{"trial": "a", "seed": 1, "config": {}}\n'
    )
    with pytest.raises(ValueError, match="line 2.*damaged"):
        Sweep(path, CountingRunner()).run(sweep.grid(TrainConfig()), [0])
    good = tmp_path / "good.jsonl"
    with pytest.raises(ValueError, match="no runner"):
        Sweep(good).run(sweep.grid(TrainConfig()), [0])
    with pytest.raises(ValueError, match="distinct"):
        Sweep(good, CountingRunner()).run(sweep.grid(TrainConfig()), [0, 0])
    with pytest.raises(ValueError, match="trial names must be distinct"):
        Sweep(good, CountingRunner()).run([Trial("a", TrainConfig()), Trial("a", TrainConfig(k=2))], [0])
    with pytest.raises(ValueError, match="dict of metrics"):
        Sweep(good, lambda config, seed: 1.0).run(sweep.grid(TrainConfig()), [0])
    with pytest.raises(ValueError, match="other than trial"):
        Sweep(good, lambda config, seed: {"seed": 1.0}).run(sweep.grid(TrainConfig()), [0])


# ---------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------


def made_rows():
    rows = []
    for trial, k, values in (("a", 1, [1.0, 2.0, 4.0]), ("b", 2, [3.0]), ("c", 1, [5.0, 7.0])):
        for seed, v in enumerate(values):
            rows.append({"trial": trial, "seed": seed, "config": {"k": k}, "fd": v, "seconds": 1.0})
    rows.append(
        {"trial": "c", "seed": 9, "config": {"k": 1}, "fd": math.nan, "diverged": True, "seconds": 1.0}
    )
    return Results(rows)


def test_summary_is_the_mean_and_sample_std_per_trial():
    results = made_rows()
    summary = results.summary("fd")
    assert [s.trial for s in summary] == ["a", "b", "c"]
    a, b, c = summary
    assert a.mean == pytest.approx(7 / 3) and a.std == pytest.approx(statistics.stdev([1, 2, 4])) and a.n == 3
    assert (b.mean, b.std, b.n) == (3.0, 0.0, 1)  # one seed: no spread
    assert (c.mean, c.n) == (6.0, 2) and c.std == pytest.approx(math.sqrt(2))  # the diverged run left out
    assert tuple(a) == ("a", a.mean, a.std, 3)
    by_k = results.summary("fd", by="k")
    assert [(s.trial, s.n) for s in by_k] == [("k=1", 5), ("k=2", 1)]
    assert by_k[0].mean == pytest.approx((1 + 2 + 4 + 5 + 7) / 5)
    assert results.best("fd").trial == "a" and results.best("fd", lower_is_better=False).trial == "c"
    with pytest.raises(ValueError, match="no metric 'kl'"):
        results.summary("kl")
    with pytest.raises(ValueError, match="cannot group by"):
        results.summary("fd", by="lr")


def test_table_and_plot():
    results = made_rows()
    table = results.table()
    lines = table.splitlines()
    assert lines[0].split() == ["trial", "fd", "runs", "diverged"]
    assert "2.33 ± 1.53" in lines[1] and lines[1].split()[-2:] == ["3", "0"]
    assert lines[3].split()[-2:] == ["3", "1"]  # trial c: three runs, one diverged
    ax = results.plot("fd")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    plt.close(ax.figure)


# ---------------------------------------------------------------------------------------
# The toy mixtures
# ---------------------------------------------------------------------------------------


def test_train_toy_one_report_per_seed_reproducible_and_independent_of_its_neighbours():
    state = torch.random.get_rng_state()
    reports = sweep.train_toy("ring", TINY, [0, 1, 2])
    assert torch.equal(torch.random.get_rng_state(), state), "the global generator was touched"
    assert len(reports) == 3 and all(r.n_modes == 8 for r in reports)
    assert all(r.counts.sum() == round(r.high_quality * 2500) for r in reports)
    again = sweep.train_toy(data.ring8(), TINY, [0, 1, 2])
    assert [r.counts.tolist() for r in again] == [r.counts.tolist() for r in reports]
    alone = sweep.train_toy("ring", TINY, [1])[0]  # seed 1 without its neighbours
    assert alone.counts.tolist() == reports[1].counts.tolist()
    assert alone.high_quality == reports[1].high_quality


def test_train_toy_with_every_stabiliser():
    setting = dataclasses.replace(TINY, k=2, decay_to=0.1, label_smoothing=0.1, instance_noise=0.1, r1=1.0)
    reports = sweep.train_toy("grid", setting, [0, 1])
    assert [r.n_modes for r in reports] == [25, 25]
    assert sweep.train_toy("grid", dataclasses.replace(setting, loss="lsgan", label_smoothing=0.0), [0])


def test_toy_setting_checks_its_values():
    assert ToySetting(loss="ns").loss == "nonsaturating"
    with pytest.raises(ValueError, match="cross-entropy"):
        ToySetting(loss="lsgan", label_smoothing=0.1)
    with pytest.raises(ValueError, match="unknown loss"):
        ToySetting(loss="nope")
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        ToySetting(steps=0)
    with pytest.raises(ValueError, match="decay_to"):
        ToySetting(decay_to=0.0)
    with pytest.raises(ValueError, match="unknown mixture"):
        sweep.train_toy("spiral", TINY, [0])


def test_run_toy_writes_one_row_per_seed_and_resumes(tmp_path, monkeypatch):
    path = tmp_path / "toy.jsonl"
    trials = sweep.grid(TINY, lr_D=[1e-3, 2e-3])
    first = Sweep(path).run_toy("ring", trials, [0, 1])
    assert [(r["trial"], r["seed"], r["ensemble"]) for r in first.rows] == [
        ("lr_D=0.001", 0, 2), ("lr_D=0.001", 1, 2), ("lr_D=0.002", 0, 2), ("lr_D=0.002", 1, 2)
    ]  # fmt: skip
    row = first.rows[0]
    assert row["config"]["mixture"] == "ring" and row["config"]["lr_D"] == 1e-3 and row["n_modes"] == 8
    assert not row["diverged"] and 0 <= row["modes"] <= 8 and 0 <= row["high_quality"] <= 1
    alone = sweep.train_toy("ring", trials[1].config, [1])[0]
    assert first.rows[3]["modes"] == alone.modes and first.rows[3]["high_quality"] == alone.high_quality

    trained = []
    real = sweep._train_members
    monkeypatch.setattr(
        sweep, "_train_members", lambda m, s, seeds, d: trained.append(seeds) or real(m, s, seeds, d)
    )
    again = Sweep(path).run_toy("ring", trials, [0, 1, 2])
    assert trained == [[2], [2]]  # only the new seed, one ensemble per trial
    assert without_seconds(again)[:2] == without_seconds(first)[:2]
    assert "modes" in again.table() and len(again.summary("modes")) == 2
    with pytest.raises(ValueError, match="another sweep"):
        Sweep(path).run_toy("grid", trials, [0])  # the file holds the ring's trials under these names
    with pytest.raises(ValueError, match="ToySetting"):
        Sweep(path).run_toy("ring", sweep.grid(TrainConfig()), [0])


# ---------------------------------------------------------------------------------------
# The MNIST runner
# ---------------------------------------------------------------------------------------


def test_mnist_runner_checks_its_budget():
    with pytest.raises(ValueError, match="give a budget"):
        sweep.mnist_runner()
    with pytest.raises(ValueError, match="unknown reference"):
        sweep.mnist_runner(steps=1, reference="train")
    with pytest.raises(ValueError, match="n_samples"):
        sweep.mnist_runner(steps=1, n_samples=1)


def test_mnist_runner_records_a_divergence(monkeypatch, tmp_path):
    x = torch.rand(128, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    monkeypatch.setattr(sweep.data, "load_mnist", lambda **kw: x)  # no MNIST needed: training never ends

    def diverge(self, *args, **kwargs):
        raise updates.DivergenceError("diverged", 3, 3, ("loss_D",))

    monkeypatch.setattr("gan_tutorial.trainer.Trainer.run", diverge)
    results = Sweep(tmp_path / "s.jsonl", sweep.mnist_runner(steps=5)).run(
        sweep.grid(TrainConfig(batch_size=8)), [0]
    )
    row = results.rows[0]
    assert row["diverged"] is True and row["steps"] == 3 and math.isnan(row["fd"]) and math.isnan(row["kl"])
    assert results.summary("fd")[0].n == 0


@pytest.fixture
def mnist():
    try:
        ensure_mnist(download=False)
    except MNISTNotFoundError as err:
        pytest.skip(f"MNIST is not in data/ ({str(err).splitlines()[0]})")


def test_mnist_runner_on_a_tiny_budget(mnist, monkeypatch):
    # the judge's reference sets cut to 1,000 images each, so that the test takes seconds, not a
    # minute: the runner's code is the same, only the real images it is compared with are fewer
    monkeypatch.setitem(judge.SPLITS, "val", ("train", 50_000, 51_000))
    monkeypatch.setitem(judge.FLOOR_POOLS, "val", (("train", 40_000, 41_000),))
    runner = sweep.mnist_runner(steps=5, n_samples=200)
    metrics = runner(RECIPES["classic"], 0)
    assert set(metrics) == {"fd", "ratio", "modes", "kl", "steps", "train_seconds", "diverged"}
    assert metrics["steps"] == 5 and metrics["diverged"] is False
    assert all(math.isfinite(metrics[k]) for k in ("fd", "ratio", "kl", "train_seconds"))
    assert 1 <= metrics["modes"] <= 10 and metrics["fd"] > 0
    x_train = runner._x_train
    runner(RECIPES["classic"], 1)
    assert runner._x_train is x_train  # MNIST loaded once


def test_mnist_runner_keeps_each_runs_checkpoint(mnist, monkeypatch, tmp_path):
    from gan_tutorial.trainer import load_generator

    monkeypatch.setitem(judge.SPLITS, "val", ("train", 50_000, 51_000))
    monkeypatch.setitem(judge.FLOOR_POOLS, "val", (("train", 40_000, 41_000),))
    runner = sweep.mnist_runner(steps=3, n_samples=100, keep=tmp_path)
    config = RECIPES["classic"]
    runner(config, 0)
    path = runner.checkpoint(config, 0)
    assert path.exists() and path.parent == tmp_path
    assert runner.checkpoint(config, 1) != path and runner.checkpoint(config, 0) == path
    G = load_generator(path)
    assert G(torch.randn(2, config.latent_dim)).shape == (2, 1, 28, 28)
    with pytest.raises(ValueError, match="keep"):
        sweep.mnist_runner(steps=1).checkpoint(config, 0)
