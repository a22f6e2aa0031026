"""pytest set-up shared by the unit tests and `pytest --nbval`.

Notebook kernels inherit this process's environment, so setting the variables here puts
every notebook run by nbval into quick mode, on the CPU, with tqdm silent.
"""

import os

os.environ.setdefault("GAN_TUTORIAL_QUICK", "1")
os.environ.setdefault("GAN_TUTORIAL_DEVICE", "cpu")
os.environ.setdefault("TQDM_DISABLE", "1")
