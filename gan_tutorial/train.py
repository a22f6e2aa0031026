"""Version 0.1's ``python -m gan_tutorial.train``: now ``python -m gan_tutorial train``.

Kept for one release; it prints the new form and runs it (:mod:`gan_tutorial.cli.train`).
"""

if __name__ == "__main__":
    import sys

    from .cli import deprecated

    sys.exit(deprecated("train"))
