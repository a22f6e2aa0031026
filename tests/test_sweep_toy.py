"""The toy mixtures trained many seeds at once (gan_tutorial.sweep.toy), and the config they take."""

import dataclasses

import pytest
import torch

from gan_tutorial import data, sweep
from gan_tutorial.config import ToyConfig

#: A toy config small enough for a test: a few milliseconds per step.
TINY = ToyConfig(hidden=16, depth=2, batch_size=64, steps=20)


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


def test_toy_config_checks_its_values():
    assert ToyConfig(loss="ns").loss == "nonsaturating"
    with pytest.raises(ValueError, match="cross-entropy"):
        ToyConfig(loss="lsgan", label_smoothing=0.1)
    with pytest.raises(ValueError, match="unknown loss"):
        ToyConfig(loss="nope")
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        ToyConfig(steps=0)
    with pytest.raises(ValueError, match="decay_to"):
        ToyConfig(decay_to=0.0)
    with pytest.raises(ValueError, match="unknown mixture"):
        sweep.train_toy("spiral", TINY, [0])


#: Chapter 6's base on the ring at its full budget (notebooks/06_tuning.ipynb, section 1).
CHAPTER_BASE = ToyConfig(hidden=64, batch_size=128, decay_to=0.01, r1=1.0, steps=2000)


def _scores(report):
    return report.counts.tolist(), report.high_quality, report.kl


@pytest.mark.parametrize(
    "config",
    [
        CHAPTER_BASE,
        dataclasses.replace(CHAPTER_BASE, k=2, instance_noise=0.1, label_smoothing=0.1, beta2=0.9),
        dataclasses.replace(CHAPTER_BASE, loss="rpgan", lr_G=3e-3, beta1=0.0, decay_to=1.0),
    ],
    ids=["base", "knobs", "rpgan"],
)
def test_a_seed_gives_the_same_run_alone_and_in_any_ensemble_at_the_chapters_budget(config):
    """A seed identifies a run: bit for bit the same samples alone, beside other seeds, in
    another position, at the full budget of chapter 6 (where last-bit differences would have
    grown into another run), with R1, the decay, instance noise and a paired loss."""
    with_others = sweep.train_toy("ring", config, [0, 1, 2])
    alone = sweep.train_toy("ring", config, [2])[0]
    elsewhere = sweep.train_toy("ring", config, [2, 7])[0]
    assert _scores(alone) == _scores(with_others[2]) == _scores(elsewhere)
    x_alone = sweep.toy_samples("ring", config, [2])[0]
    x_pair = sweep.toy_samples("ring", config, [5, 2])[1]
    assert torch.equal(x_alone, x_pair)


def test_a_resumed_toy_sweep_equals_an_uninterrupted_one(tmp_path):
    trials = [sweep.Trial("base", CHAPTER_BASE)]
    whole = sweep.Sweep(tmp_path / "whole.jsonl").run_toy("ring", trials, [0, 1, 2])
    cut = sweep.Sweep(tmp_path / "cut.jsonl")
    cut.run_toy("ring", trials, [1])  # a sweep stopped after one seed
    resumed = cut.run_toy("ring", trials, [0, 1, 2])
    keys = ("trial", "seed", "modes", "held", "high_quality", "kl", "distance", "diverged")
    assert [[r[k] for k in keys] for r in resumed.rows] == [[r[k] for k in keys] for r in whole.rows]
    assert [r["ensemble"] for r in resumed.rows] == [2, 1, 2]  # the runs did train apart
