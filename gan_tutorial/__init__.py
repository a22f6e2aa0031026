"""gan_tutorial: the tested package behind the GAN tutorial notebooks.

Modules, one concept each (the file tree is the table of contents):

* ``runtime``    - device choice, seeding, quick mode, data folder (chapter 0)
* ``data``       - MNIST in [-1, 1] and toy distributions with exact densities (chapter 0)
* ``losses``     - minimax, non-saturating and LSGAN losses from logits, the R1 penalty (chapters 1, 2, 4)
* ``updates``    - one D update, one G update, Algorithm 1's loop, the divergence guard (chapter 1)
* ``models``     - ``toy`` MLPs (chapters 1-2), the MNIST ``mlp`` (3), the ``dcgan`` and its variants (4)
* ``metrics``    - mode coverage (2); the Frechet distance and the MNIST judge (3); the Inception Score,
  precision/recall/density/coverage, Inception features, every metric beside its floor (5)
* ``explorer``   - the interactive 2-D GAN explorer (chapter 2)
* ``checkpoint`` - atomic checkpoints loaded with ``weights_only=True`` (chapter 3)
* ``config``     - what defines a run: ``TrainConfig``, the named recipes, what a resumed run may change (3-4)
* ``trainer``    - the MNIST trainer: monitors, checkpoints that survive a kill, exact resume (chapter 3)
* ``accel``      - the fast path: autocast, loss scaling, channels-last, fused Adam, CUDA graphs (chapter 4)
* ``latent``     - seeded codes and samples, interpolation, nearest neighbours, EMA of G (3-4)
* ``bench``      - the trainer against the pytorch/examples loop, one change at a time (chapter 4)
* ``exercises``  - the checkers of every chapter's exercises
* ``cli``        - the command line: ``python -m gan_tutorial train|sample|evaluate|bench``

Importing the package does nothing else: no CUDA calls, no downloads, no seeding.
"""

__version__ = "0.2.0"
