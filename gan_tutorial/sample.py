"""Version 0.1's ``python -m gan_tutorial.sample``: now ``python -m gan_tutorial sample``.

Kept for one release; it prints the new form and runs it (:mod:`gan_tutorial.cli.sample`).
"""

if __name__ == "__main__":
    import sys

    from .cli import deprecated

    sys.exit(deprecated("sample"))
