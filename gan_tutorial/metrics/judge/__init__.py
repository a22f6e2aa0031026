r"""The judge: a small MNIST classifier whose view of generated digits gives numbers (chapter 3).

Chapter 3 judges a generator by three numbers computed from this classifier, instead of by
squinting at a grid of samples:

* **Frechet distance** (:mod:`gan_tutorial.metrics.frechet`) between Gaussians fitted to the
  classifier's penultimate features of generated images and of a real *reference* set
  ("FD (judge features)"; FID is the same distance on Inception's features, and the two do not
  compare). Compare it with the **floor**, the distance that as many *real* images score against the
  same reference: the mean and the spread over several draws (:func:`reference`);
* **modes covered**: classes that receive at least 1% of the samples (10 is best);
* **KL from uniform** of the predicted-class histogram h: ``sum_k h_k log(10 h_k)``
  (0 when every digit is equally frequent, log 10 = 2.30 when all samples are one digit;
  :func:`gan_tutorial.metrics.modes.kl_from_uniform`).

One concept per module; this file presents the names the chapters use (``J.score``, ...):

* ``network``  - the classifier, its shipped weights, and what it sees in a set of images:
  features, class probabilities, the class histogram (chapters 3, 5 and 7)
* ``splits``   - which real images: the judge's 40,000 training images, the ``"val"`` and
  ``"test"`` references and the floor pools, none of them seen by the judge (chapters 3 and 5)
* ``scores``   - a reference and its floor, the judge's numbers for a sample set, and the
  class-mix distance (chapters 3, 4, 6 and 7)
* ``training`` - the judge's training recipe, for the judge and for chapter 7's classifiers
* ``__main__`` - the command line: ``python -m gan_tutorial.metrics.judge --train`` regenerates
  the shipped weights, ``gan_tutorial/weights/mnist_judge.pt`` (a few minutes on a CPU)
"""

from .network import (
    FEATURE_DIM,
    NUM_CLASSES,
    WEIGHTS_PATH,
    Judge,
    JudgeFeatures,
    JudgeLogits,
    accuracy,
    class_histogram,
    load_judge,
    modes_covered,
    predict,
)
from .scores import (
    Reference,
    Scores,
    class_mix_distance,
    floor_pool,
    reference,
    reference_features,
    score,
)
from .splits import (
    FLOOR_POOLS,
    JUDGE_TRAIN,
    SPLITS,
    check_split,
    floor_draws,
    floor_pool_images,
    real_images,
)
from .training import fit_classifier, train_judge
