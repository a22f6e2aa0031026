"""gan_tutorial: the tested package behind the GAN tutorial notebooks.

Modules, one concept each (the file tree is the table of contents):

* ``runtime``    - device choice, seeding, quick mode, data folder (chapter 0)
* ``data``       - MNIST in [-1, 1] and toy distributions with exact densities (chapter 0)
* ``losses``     - minimax, non-saturating and LSGAN losses from logits (chapter 1)
* ``training``   - one D update, one G update, k D steps per G step (chapter 1)
* ``models``     - toy MLPs (chapters 1-2), the MNIST MLP with or without batch norm in G (3), the DCGAN (4)
* ``metrics``    - mode coverage on toy mixtures (2), the MNIST judge and Frechet distance (3)
* ``explorer``   - the interactive 2-D GAN explorer (chapter 2)
* ``checkpoint`` - atomic checkpoints loaded with ``weights_only=True`` (chapter 3)
* ``trainer``    - the MNIST trainer: monitors, exact resume, divergence guard (chapter 3)
* ``accel``      - the fast path: autocast, loss scaling, channels-last, fused Adam, compile (chapter 4)
* ``latent``     - interpolation, nearest neighbours, EMA of G's weights, batch-norm recalibration (3-4)
* ``train``, ``sample``, ``bench`` - the command line (``python -m gan_tutorial.train`` ...)

Importing the package does nothing else: no CUDA calls, no downloads, no seeding.
"""

__version__ = "0.1.0"
