"""gan_tutorial: the tested package behind the GAN tutorial notebooks.

The file tree is the table of contents: one concept per module, each short enough to read in
one sitting; a subpackage's own docstring maps its modules.

* ``runtime``    - device choice, seeding, quick mode, the data folder, a block run with the
  global random state left as it was (chapter 0)
* ``data``       - MNIST in [-1, 1], random batches, toy distributions with exact densities (chapter 0)
* ``losses``     - every loss from logits or scores (minimax, non-saturating, LSGAN; WGAN, hinge,
  relativistic) and the R1, R2 and gradient penalties, each formula written once (chapters 1, 2, 4, 6)
* ``updates``    - one D update and one G update as chapter 1 writes them, Algorithm 1's loop, the
  monitors and the divergence guard (chapters 1 and 2)
* ``models/``    - the networks, one module per chapter's family, built by name (chapters 1-4, 7, 8)
* ``metrics/``   - mode coverage (2); the Frechet distance and the MNIST judge (3); the Inception
  Score, precision/recall/density/coverage, every metric beside its floor (5); obedience (7)
* ``stats``      - the mean and spread of a metric over seeds or draws (chapters 3-7)
* ``explorer``   - the interactive 2-D GAN explorer (chapter 2)
* ``config``     - what defines a run: ``TrainConfig``, the named recipes, what a resumed run may
  change; ``ToyConfig`` for the 2-D runs (chapters 2-7)
* ``accel``      - the fast path: autocast, loss scaling, channels-last, fused Adam, compile (chapter 4)
* ``average``    - the moving average of G's weights and its batch-norm statistics (chapter 4)
* ``iteration``  - one training iteration as the trainer runs it: chapter 1's updates with the
  fast path and the stabilisers around them, and its capture as a CUDA graph (chapters 3-7)
* ``interrupt``  - Ctrl-C and SIGTERM deferred to the end of an iteration (chapter 3)
* ``loop``       - the trainer's logging window, budget and lazy-penalty schedule (chapter 3)
* ``distributed`` - one run on several processes under torchrun: shards, DDP wrappers, agreement
  (appendix A)
* ``checkpoint`` - atomic checkpoints loaded with ``weights_only=True``; a run's G from one (chapter 3)
* ``trainer``    - the MNIST trainer: a run built in one place, its loop, checkpoints, exact resume
  (chapter 3, used by chapters 4-7)
* ``latent``     - seeded codes and samples, interpolation, nearest neighbours (chapters 3, 4, 7)
* ``bench``      - the trainer against the pytorch/examples loop, one change at a time (chapter 4)
* ``sweep/``     - designs of trials, seeds run as one ensemble, resumable results (chapter 6)
* ``bugs/``      - a gallery of GAN bugs that look like bad luck, each step beside its fix (chapter 6)
* ``doctor/``    - the checks that name a bug from a run's monitors, models and data (chapter 6)
* ``vae``        - a VAE on the DCGAN's networks, its ELBO term by term (chapter 7)
* ``augment``    - differentiable augmentation for little data: DiffAugment's transforms and
  ADA's controller of their probability (chapter 8)
* ``image2image`` - image to image with a conditional GAN (pix2pix): the half-masked digit task, the
  pix2pix step and G's loss, sharpness, saturation and diversity per input (chapter 8)
* ``anomaly``    - anomaly detection: f-AnoGAN's encoder and izi_f score, the autoencoder and
  nearest-neighbour baselines, the AUROC (chapter 8)
* ``exercises/`` - the checkers of every chapter's exercises
* ``cli/``       - the command line: ``python -m gan_tutorial train|sample|evaluate|bench``

Importing the package does nothing else: no CUDA calls, no downloads, no seeding.
"""

__version__ = "0.3.0"
