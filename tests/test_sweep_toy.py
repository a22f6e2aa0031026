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
