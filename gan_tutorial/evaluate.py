"""``python -m gan_tutorial.evaluate``, in the module form of version 0.1's commands: it prints the
current form, ``python -m gan_tutorial evaluate`` (:mod:`gan_tutorial.cli.evaluate`), and runs it."""

if __name__ == "__main__":
    import sys

    from .cli import deprecated

    sys.exit(deprecated("evaluate"))
