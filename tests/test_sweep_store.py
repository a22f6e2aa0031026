"""A sweep's results file (gan_tutorial.sweep.store): rows written as runs end, a file that survives a
kill, and the toy mixtures' runs trained as one ensemble per trial."""

import dataclasses
import json
import warnings

import pytest

from gan_tutorial import sweep
from gan_tutorial.config import ToyConfig, TrainConfig
from gan_tutorial.sweep import Sweep, Trial
from gan_tutorial.sweep import store as sweep_store

#: A toy config small enough for a test: a few milliseconds per step.
TINY = ToyConfig(hidden=16, depth=2, batch_size=64, steps=20)


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
    real = sweep_store._train_members
    monkeypatch.setattr(
        sweep_store, "_train_members", lambda m, s, seeds, d: trained.append(seeds) or real(m, s, seeds, d)
    )
    again = Sweep(path).run_toy("ring", trials, [0, 1, 2])
    assert trained == [[2], [2]]  # only the new seed, one ensemble per trial
    assert without_seconds(again)[:2] == without_seconds(first)[:2]
    assert "modes" in again.table() and len(again.summary("modes")) == 2
    with pytest.raises(ValueError, match="another sweep"):
        Sweep(path).run_toy("grid", trials, [0])  # the file holds the ring's trials under these names
    with pytest.raises(ValueError, match="ToyConfig"):
        Sweep(path).run_toy("ring", sweep.grid(TrainConfig()), [0])


def test_toy_rows_of_an_older_toy_trainer_are_run_again(tmp_path):
    path = tmp_path / "toy.jsonl"
    trials = sweep.grid(TINY)
    fresh = Sweep(path).run_toy("ring", trials, [0])
    row = dict(fresh.rows[0], config={**fresh.rows[0]["config"], "toy_version": 1}, modes=-1)
    path.write_text(json.dumps(row) + "\n")  # a row made by an older trainer, under the same name
    with pytest.warns(UserWarning, match="older toy trainer"):
        again = Sweep(path).run_toy("ring", trials, [0])
    assert again.rows[0]["modes"] == fresh.rows[0]["modes"]  # run again, not the stale -1
    assert 0 <= fresh.rows[0]["held"] <= fresh.rows[0]["modes"] and fresh.rows[0]["distance"] > 0
    assert fresh.rows[0]["config"]["toy_version"] == sweep.TOY_VERSION
