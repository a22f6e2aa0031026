"""``python -m gan_tutorial <command>``: the command line (:mod:`gan_tutorial.cli`)."""

import sys

from .cli import main

sys.exit(main())
