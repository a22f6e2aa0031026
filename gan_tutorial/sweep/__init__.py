r"""Sweeps: one training recipe run over many settings and seeds, resumable, then summarised (chapter 6).

One GAN run says little: the same setting with another seed can collapse where the first
run covered every mode, so a setting is judged by its mean and spread over seeds, and two
settings are compared only when their difference is larger than that spread. A sweep runs
every pair (trial, seed) of a list of trials and a list of seeds and keeps one row of
numbers per run.

One concept per module; this file presents the names chapter 6 uses (``sweep.grid``, ...):

* ``designs`` - the lists of trials: :func:`grid`, :func:`one_at_a_time` (chapter 6 turns
  each knob alone from a base) and :func:`random_search` (Lucic et al.'s search per loss)
* ``toy``     - many seeds of a :class:`~gan_tutorial.config.ToyConfig` on a 2-D mixture trained
  at once, as one ensemble: :func:`train_toy` (the knobs and the losses on the 25 Gaussians),
  and :func:`toy_samples` (the samples behind a run's scores)
* ``mnist``   - :class:`MNISTRunner`, one run of a :class:`~gan_tutorial.config.TrainConfig`
  trained and scored with the judge (the stabilisers on MNIST at equal time)
* ``results`` - :class:`Results`: each trial's mean ± std over its seeds, a table, the best
  trial, a plot of every seed beside its trial's mean, and :meth:`Results.compare` (each trial
  against the base: a bootstrap interval, a permutation test, Holm's correction)
* ``store``   - :class:`Sweep`: the JSON-lines file of finished runs, which a killed sweep
  continues from (:meth:`Sweep.run`, and :meth:`Sweep.run_toy` for the toy mixtures)
"""

from .designs import Trial, grid, one_at_a_time, random_search
from .mnist import MNISTRunner
from .results import NOT_SCORES, ROW_KEYS, Comparison, Results, Summary
from .store import HELD_SHARE, TOY_VERSION, Runner, Sweep
from .toy import D_SEED_OFFSET, EVAL_SEED, MIXTURES, toy_samples, train_toy

__all__ = [
    "D_SEED_OFFSET",
    "EVAL_SEED",
    "HELD_SHARE",
    "MIXTURES",
    "NOT_SCORES",
    "ROW_KEYS",
    "TOY_VERSION",
    "Comparison",
    "MNISTRunner",
    "Results",
    "Runner",
    "Summary",
    "Sweep",
    "Trial",
    "grid",
    "one_at_a_time",
    "random_search",
    "toy_samples",
    "train_toy",
]
