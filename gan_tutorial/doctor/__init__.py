r"""Symptoms of GAN bugs read off a training run: :func:`diagnose` and the checks it is made of (chapter 6).

A bug in a GAN's training step rarely crashes; it leaves marks in the monitors that
:func:`updates.train` and the trainer record (``loss_D``, ``loss_G``, ``d_real``, ``d_fake``,
``grad_D``, ``grad_G``), in the data, and in the models. Each check looks for one such mark and
returns a :class:`Finding` (what was seen, the bugs that produce it, the fix) or ``None``;
:func:`diagnose` runs every check its inputs allow and :func:`report` prints the lot. Every check
can be called alone. The gallery of :mod:`gan_tutorial.bugs` is what they were calibrated on: each
of its bugs is named by one, and its healthy run by none.

The modules, by what they examine:

* ``findings`` - :class:`Finding`, :func:`report`, :func:`loss_kind` and what the checks of a
  history share;
* ``monitors`` - the monitors of a run: ``non_finite`` (:func:`check_finite`), ``negative_loss``
  (:func:`check_loss_sign`), ``no_gradient_G`` and ``no_gradient_D`` (:func:`check_no_gradient`),
  ``d_rates_fakes_real`` (:func:`check_d_rates_fakes_real`), ``d_wins`` (:func:`check_d_wins`);
* ``setup`` - what the run was set up with: ``data_range`` (:func:`check_data_range`),
  ``batch_norm_with_penalty`` (:func:`check_batch_norm_with_penalty`), ``eval_mode``
  (:func:`check_train_mode`), ``code_shape`` (:func:`check_codes`), ``run_failed`` (:func:`check_error`);
* ``penalty`` - a gradient-penalty function probed against WGAN-GP's definition:
  ``gp_interpolates``, ``gp_formula``, ``gp_no_graph`` (:func:`check_gradient_penalty`);
* ``diagnosis`` - all of them at once: :func:`diagnose` (which adds ``too_few_steps`` for a history
  too short for the checks of trends) and :func:`diagnose_trainer`.
"""

from .diagnosis import diagnose, diagnose_trainer
from .findings import MIN_STEPS, Finding, loss_kind, report
from .monitors import check_d_rates_fakes_real, check_d_wins, check_finite, check_loss_sign, check_no_gradient
from .penalty import GP_WEIGHT, Penalty, check_gradient_penalty
from .setup import (
    check_batch_norm_with_penalty,
    check_codes,
    check_data_range,
    check_error,
    check_train_mode,
    output_range,
)

__all__ = [
    "GP_WEIGHT",
    "MIN_STEPS",
    "Finding",
    "Penalty",
    "check_batch_norm_with_penalty",
    "check_codes",
    "check_d_rates_fakes_real",
    "check_d_wins",
    "check_data_range",
    "check_error",
    "check_finite",
    "check_gradient_penalty",
    "check_loss_sign",
    "check_no_gradient",
    "check_train_mode",
    "diagnose",
    "diagnose_trainer",
    "loss_kind",
    "output_range",
    "report",
]
