"""Bugs that look like bad luck (chapter 6): a gallery of wrong lines, each run briefly so that its
symptom shows.

A GAN that does not learn rarely crashes: it trains, the losses move, and the samples are bad, which
looks like an unlucky seed or a learning rate to tune. Each :class:`Bug` of :data:`BUGS` is one line a
learner really writes, with ``what`` (the line and why it is wrong), ``fix`` (the right line) and
``source`` (the code that holds it, the wrong line marked ``# BUG:`` and its fix ``# FIX:``). Its
:meth:`Bug.run` trains a small GAN with the bug for a few hundred steps and returns a
:class:`BugRun`: the :class:`~gan_tutorial.updates.History` of the monitors :func:`updates.train`
records and whatever else :func:`gan_tutorial.doctor.diagnose` needs to name the bug (the data, G, D,
the codes, the penalty function, the exception when the bug crashes instead of training).
:func:`correct` is the same set-up without a bug, for the healthy monitors beside each bug's.

The modules:

* ``setup`` - the set-ups: the 2-D ring (:data:`~.setup.TOY`) and MNIST;
* ``step`` - the right training step, in the pieces a bug replaces, and the loop;
* ``run`` - :class:`Bug`, :class:`BugRun` and :func:`correct`;
* ``formulas`` - wrong loss formulas: ``misplaced_log``, ``log_sigmoid_underflow``, ``pm1_labels_bce``;
* ``images`` - what an image GAN is fed: ``data_range``, ``noise_4d_linear``;
* ``wgan_gp`` - the critic of WGAN-GP: ``bn_in_wgan_gp_critic``, ``per_pixel_gp_weight``, and the
  right penalty :func:`~.wgan_gp.gp_on_critic`;
* ``training`` - the loop's mechanics: ``swapped_gradients``, ``detached_fake_in_g_step``,
  ``zero_grad_misplaced``, ``eval_mode_left_on``.
"""

from collections.abc import Mapping
from types import MappingProxyType

from .formulas import LOG_SIGMOID_UNDERFLOW, MISPLACED_LOG, PM1_LABELS_BCE
from .images import DATA_RANGE, NOISE_4D_LINEAR
from .run import Bug, BugRun, correct
from .training import DETACHED_FAKE_IN_G_STEP, EVAL_MODE_LEFT_ON, SWAPPED_GRADIENTS, ZERO_GRAD_MISPLACED
from .wgan_gp import BN_IN_WGAN_GP_CRITIC, PER_PIXEL_GP_WEIGHT

#: The gallery, by name, in the order the chapter shows it. Read-only.
BUGS: Mapping[str, Bug] = MappingProxyType(
    {
        bug.name: bug
        for bug in (
            SWAPPED_GRADIENTS,
            MISPLACED_LOG,
            DATA_RANGE,
            LOG_SIGMOID_UNDERFLOW,
            NOISE_4D_LINEAR,
            PM1_LABELS_BCE,
            BN_IN_WGAN_GP_CRITIC,
            PER_PIXEL_GP_WEIGHT,
            DETACHED_FAKE_IN_G_STEP,
            ZERO_GRAD_MISPLACED,
            EVAL_MODE_LEFT_ON,
        )
    }
)

__all__ = ["BUGS", "Bug", "BugRun", "correct"]
