import sys

from gcann.cli import main

sys.exit(main())
