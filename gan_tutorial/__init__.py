"""gan_tutorial: the tested package behind the GAN tutorial notebooks.

Modules, one concept each (the file tree is the table of contents):

* ``runtime``  - device choice, seeding, quick mode, data folder (chapter 0)
* ``data``     - MNIST in [-1, 1] and toy distributions with exact densities (chapter 0)
* ``losses``   - minimax, non-saturating and LSGAN losses from logits (chapter 1)
* ``training`` - one D update, one G update, k D steps per G step (chapter 1)

Importing the package does nothing else: no CUDA calls, no downloads, no seeding.
"""

__version__ = "0.1.0"
