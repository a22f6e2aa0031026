"""Metrics that judge a generator with numbers instead of by eye.

* ``modes`` - mode coverage on the toy mixtures (chapter 2)
* ``judge`` - an MNIST classifier's view: Frechet distance, classes covered (chapter 3)
"""

from .judge import (
    Judge,
    Reference,
    Scores,
    class_mix_distance,
    frechet_distance,
    load_judge,
    reference,
    score,
)
from .modes import (
    N_SAMPLES,
    ModeReport,
    assign_modes,
    kl_from_uniform,
    mode_counts,
    mode_report,
    modes_captured,
)
