"""``python -m gcann``: the ``gcann`` command line."""
from gcann.cli import main

if __name__ == "__main__":
    main()
