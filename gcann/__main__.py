"""``python -m gcann``: the ``gcann`` command line (its exit status included)."""
import sys

from gcann.cli import main

if __name__ == "__main__":
    sys.exit(main())
