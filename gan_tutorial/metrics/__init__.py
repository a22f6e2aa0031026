"""Metrics that judge a generator with numbers instead of by eye, one concept per module.

* ``modes``   - mode coverage on the toy mixtures, and the KL of a histogram from uniform (chapter 2)
* ``frechet`` - the Frechet distance between Gaussians fitted to features (chapters 3 and 5)
* ``judge/``  - an MNIST classifier's view: its Frechet distance beside real-data floors, the
  digits covered and how evenly (chapter 3; used again in chapters 4 to 7). A package:
  ``network``, ``splits``, ``scores``, ``training`` and its command line
* ``inception_score`` - the Inception Score with any classifier (chapter 5)
* ``manifold`` - precision and recall, density and coverage of two sets of features (chapter 5)
* ``inception`` - torchvision's Inception v3 as a feature module, where its weights are (chapter 5)
* ``evaluation`` - every metric of chapter 5 for one set of samples, beside its floor (chapter 5)
* ``conditional`` - does a conditional generator obey: the judge's confusion matrix, the
  Frechet distance per digit, the classification accuracy score (chapter 7)
"""

from .frechet import feature_stats, frechet_distance, frechet_distance_of_features
from .judge import (
    Judge,
    Reference,
    Scores,
    class_mix_distance,
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
