"""A sweep's results file: runs of trials x seeds, one JSON line per finished run, resumable (chapter 6).

A run is a call ``runner(config, seed) -> {metric: value}`` (:class:`~gan_tutorial.sweep.MNISTRunner`
for MNIST); :meth:`Sweep.run` starts only the runs whose row is not in the file yet, and writes
each row as soon as its run ends (flushed and synced to the disk), so a sweep that is killed loses
at most the run in progress and the same call continues it::

    {"trial": "lr_D=0.0004,k=2", "seed": 0, "config": {...}, "fd": 31.2, ..., "seconds": 95.1}

The toy mixtures have a faster path, :meth:`Sweep.run_toy`: the missing seeds of a trial train
at once, as one ensemble (:func:`~gan_tutorial.sweep.train_toy`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from ..config import ToyConfig
from ..data import GaussianMixture
from ..metrics.modes import N_SAMPLES, modes_captured, nearest_mode_distance
from .designs import Trial, _check_seeds
from .results import ROW_KEYS, Results
from .toy import _mixture, _train_members

#: The toy trainer's version, stored in each toy row's config: a row of another version was
#: trained by other code (version 2: a seed's numbers no longer depend on the seeds beside it;
#: rows hold ``held`` and ``distance``), so it is not reused but run again.
TOY_VERSION = 2
#: A mode is held when at least this share of the samples are high quality at it (25 of 2,500).
HELD_SHARE = 0.01

#: A run: ``runner(config, seed)`` trains ``config`` with ``seed`` and returns its metrics.
Runner = Callable[[Any, int], Mapping[str, float]]


def _config_dict(config: Any) -> dict[str, Any]:
    """A config as the JSON it is stored as (tuples become lists), for comparing with a stored row."""
    try:
        return json.loads(json.dumps(dataclasses.asdict(config)))
    except TypeError as err:
        raise ValueError(
            f"a config must hold only JSON-writable values (numbers, strings, lists, dicts): {err}"
        ) from err


def _differences(ours: dict[str, Any], stored: dict[str, Any], config: Any) -> list[str]:
    """The fields in which a stored config differs from ours. A field the stored one lacks while
    ours holds that field's default is no difference: the row was written before the field existed."""
    defaults = {}
    for f in dataclasses.fields(config):
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            defaults[f.name] = f.default_factory()
    defaults = json.loads(json.dumps(defaults, default=str))
    missing = object()
    return sorted(
        key
        for key in set(ours) | set(stored)
        if ours.get(key, missing) != stored.get(key, missing)
        and not (key not in stored and key in defaults and ours[key] == defaults[key])
    )


def _check_trials(trials: Iterable[Trial]) -> list[Trial]:
    trials = list(trials)
    if not trials:
        raise ValueError("give at least one trial")
    for t in trials:
        if not isinstance(t, Trial) or not isinstance(t.name, str) or not dataclasses.is_dataclass(t.config):
            raise ValueError(
                f"trials must be Trial(name, config) with a dataclass config, got {t!r}; "
                "build them with grid(), one_at_a_time() or random_search()"
            )
    names = [t.name for t in trials]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"trial names must be distinct; given more than once: {', '.join(twice)}")
    return trials


def _metrics(metrics: Any) -> dict[str, Any]:
    """A runner's answer checked: a dict of metric names to numbers (or true/false)."""
    if not isinstance(metrics, Mapping):
        raise ValueError(f"a runner must return a dict of metrics, name -> number; got {metrics!r}")
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if not isinstance(key, str) or key in ROW_KEYS:
            raise ValueError(
                f"a runner's metric names must be strings other than {', '.join(ROW_KEYS)}, got {key!r}"
            )
        if isinstance(value, (bool, int, float)):
            out[key] = value
        else:
            try:
                out[key] = float(value)  # a 0-d tensor or numpy number
            except (TypeError, ValueError):
                raise ValueError(f"metric {key} must be a number, got {value!r}") from None
    return out


class Sweep:
    """Runs of trials x seeds whose results live in the JSON-lines file ``path``, one row per run.

    ``runner(config, seed) -> {metric: number}`` makes one run (a :class:`~gan_tutorial.sweep.MNISTRunner` for
    :class:`~gan_tutorial.config.TrainConfig` trials); :meth:`run_toy` needs none. The file is
    the sweep's memory: a pair (trial, seed) that has a row is never run again, so the same call
    after a kill, a crash or a Ctrl-C continues where it stopped, and once everything ran it
    only reads. Rows are written one whole line at a time, flushed and synced to the disk; a
    last line cut short by a kill is dropped (with a warning) and its run done again. A trial
    is known by its name: the same name with another config in the file is a ``ValueError``,
    since the file then belongs to another sweep. Metrics that are NaN or infinite are written
    as JSON's ``NaN`` and ``Infinity``, which Python's ``json`` reads back.
    """

    def __init__(self, path: str | Path, runner: Runner | None = None) -> None:
        self.path = Path(path)
        self.runner = runner
        if self.path.is_dir():
            raise ValueError(
                f"{self.path} is a folder; a sweep's results go to a file, e.g. {self.path / 'sweep.jsonl'}"
            )

    def __repr__(self) -> str:
        return f"Sweep({str(self.path)!r})"

    # -- the file -------------------------------------------------------------------------

    def _read(self, repair: bool) -> list[dict[str, Any]]:
        """The rows in the file; a cut last line is dropped (and cut from the file when ``repair``)."""
        if not self.path.exists():
            return []
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")
        rows, offset = [], 0
        for i, line in enumerate(lines):
            start, offset = offset, offset + len(line) + 1
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                if any(rest.strip() for rest in lines[i + 1 :]):
                    raise ValueError(
                        f"{self.path}, line {i + 1}, is not a JSON row, and rows follow it: the file is "
                        "damaged or not a sweep's results; repair it or choose another path"
                    ) from None
                warnings.warn(
                    f"{self.path}: ignoring its last line, cut short (a sweep killed while writing it); "
                    "that run will be done again",
                    stacklevel=3,
                )
                if repair:
                    with open(self.path, "r+b") as f:
                        f.truncate(start)
                        f.flush()
                        os.fsync(f.fileno())
                break
            if not isinstance(row, dict) or not {"trial", "seed", "config"} <= set(row):
                raise ValueError(
                    f"{self.path}, line {i + 1}, is not a sweep's row (trial, seed, config, metrics): "
                    "choose another path for this sweep"
                )
            rows.append(row)
        return rows

    def _append(self, row: dict[str, Any]) -> None:
        """Write one row as one line, flushed and synced: a kill loses at most the run in progress."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(row) + "\n"
        with open(self.path, "a+b") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() > 0:  # a last row written without its newline (a kill between the two)
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    line = "\n" + line
            f.write(line.encode())
            f.flush()
            os.fsync(f.fileno())

    def results(self) -> Results:
        """Every row in the file, in the order written."""
        return Results(self._read(repair=False))

    def _done(self, trials: list[Trial], configs: dict[str, dict[str, Any]]) -> dict[tuple[str, int], dict]:
        """The rows of these trials already in the file, by (trial, seed), after checking that
        each trial's name stands for the same config there."""
        by_name = {t.name: t for t in trials}
        done: dict[tuple[str, int], dict] = {}
        stale = 0
        for row in self._read(repair=True):
            name = row["trial"]
            if name not in configs:
                continue
            version = configs[name].get("toy_version")
            if version is not None and row["config"].get("toy_version") != version:
                stale += 1  # trained by an older toy trainer: run again
                continue
            differ = _differences(configs[name], row["config"], by_name[name].config)
            if differ:
                raise ValueError(
                    f"{self.path} already holds trial {name!r} with another config (it differs in "
                    f"{', '.join(differ)}): the file belongs to another sweep. Choose another path "
                    "for this one, or give the trial another name"
                )
            done.setdefault((name, row["seed"]), row)  # the first row of a pair counts
        if stale:
            warnings.warn(
                f"{self.path}: {stale} rows were written by an older toy trainer (not version "
                f"{TOY_VERSION}); their runs will be done again",
                stacklevel=3,
            )
        return done

    def _row(self, trial: Trial, config: dict[str, Any], seed: int, metrics: Any, seconds: float) -> dict:
        return {"trial": trial.name, "seed": seed, "config": config, **_metrics(metrics), "seconds": seconds}

    # -- running ----------------------------------------------------------------------------

    def run(self, trials: Iterable[Trial], seeds: Iterable[int]) -> Results:
        """Run every pair (trial, seed) that has no row in the file yet, trial by trial, writing each
        row as its run ends; return the rows of all the pairs, in trial then seed order.

        A runner that raises (a Ctrl-C's ``KeyboardInterrupt`` included) stops the sweep; the rows
        written so far stay, and the same call later runs only what is missing.
        """
        if self.runner is None:
            raise ValueError(
                "this Sweep has no runner: give one, Sweep(path, runner=MNISTRunner(steps=...)), "
                "or train toy settings with sweep.run_toy(mixture, trials, seeds)"
            )
        trials, seeds = _check_trials(trials), _check_seeds(seeds)
        configs = {t.name: _config_dict(t.config) for t in trials}
        done = self._done(trials, configs)
        for trial in trials:
            for seed in seeds:
                if (trial.name, seed) in done:
                    continue
                start = time.perf_counter()
                metrics = self.runner(trial.config, seed)
                row = self._row(trial, configs[trial.name], seed, metrics, time.perf_counter() - start)
                self._append(row)
                done[trial.name, seed] = row
        return Results(done[t.name, s] for t in trials for s in seeds)

    def run_toy(
        self,
        mixture: GaussianMixture | str,
        trials: Iterable[Trial],
        seeds: Iterable[int],
        device: str | torch.device = "cpu",
    ) -> Results:
        """Like :meth:`run` for :class:`~gan_tutorial.config.ToyConfig` trials on a 2-D mixture, with the
        seeds of a trial that are missing trained together, in one ensemble
        (:func:`~gan_tutorial.sweep.train_toy`).

        Each row holds the run's ``modes``, ``n_modes``, ``high_quality``, ``kl``, ``all_modes``,
        ``held`` (modes with at least 1% of the samples high quality there,
        :data:`HELD_SHARE`), ``distance`` (the mean nearest-mode distance in standard deviations,
        :func:`~gan_tutorial.metrics.modes.nearest_mode_distance`) and
        ``diverged`` (NaN scores when it did), ``seconds`` (the ensemble's wall time) and
        ``ensemble`` (how many runs it trained). The rows of a trial are written when its
        ensemble ends. The config of a row names the mixture too ("ring", "grid" or a
        fingerprint), and the toy trainer's version (:data:`TOY_VERSION`): rows of an older
        version are run again. A seed's row is the same whether it trained alone, beside other
        seeds, or in a sweep resumed after a kill (``tests/test_sweep_toy.py`` checks it at
        chapter 6's budgets).
        """
        gm, key = _mixture(mixture)
        trials, seeds = _check_trials(trials), _check_seeds(seeds)
        for t in trials:
            if not isinstance(t.config, ToyConfig):
                raise ValueError(
                    f"run_toy trains ToyConfig trials; trial {t.name!r} has a {type(t.config).__name__} "
                    "(MNIST configs run with Sweep(path, MNISTRunner(...)).run)"
                )
        configs = {
            t.name: {**_config_dict(t.config), "mixture": key, "toy_version": TOY_VERSION} for t in trials
        }
        done = self._done(trials, configs)
        for trial in trials:
            missing = [s for s in seeds if (trial.name, s) not in done]
            if not missing:
                continue
            start = time.perf_counter()
            reports, diverged, samples = _train_members(gm, trial.config, missing, device)
            seconds = time.perf_counter() - start
            for seed, report, bad, x in zip(missing, reports, diverged, samples, strict=True):
                nan = math.nan
                metrics = {
                    "modes": nan if bad else report.modes,
                    "n_modes": report.n_modes,
                    "high_quality": nan if bad else report.high_quality,
                    "kl": nan if bad else report.kl,
                    "all_modes": False if bad else report.all_modes,
                    "held": nan if bad else modes_captured(report.counts, round(HELD_SHARE * N_SAMPLES)),
                    "distance": nan if bad else nearest_mode_distance(x, gm),
                    "diverged": bad,
                    "ensemble": len(missing),
                }
                row = self._row(trial, configs[trial.name], seed, metrics, seconds)
                self._append(row)
                done[trial.name, seed] = row
        return Results(done[t.name, s] for t in trials for s in seeds)
