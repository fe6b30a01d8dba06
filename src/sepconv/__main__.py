"""``python -m sepconv`` runs the command line."""

import sys

from sepconv.cli import main

sys.exit(main())
