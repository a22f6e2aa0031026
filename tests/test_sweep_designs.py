"""Sweep designs (gan_tutorial.sweep.designs): grids, one knob at a time, random searches."""

import dataclasses

import pytest

from gan_tutorial import sweep
from gan_tutorial.config import ToyConfig, TrainConfig
from gan_tutorial.sweep import Trial

#: A toy config small enough for a test: a few milliseconds per step.
TINY = ToyConfig(hidden=16, depth=2, batch_size=64, steps=20)


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
