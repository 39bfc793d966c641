"""``python -m bilevel.proofs_checks`` runs the ``bilevel`` command line."""

import sys

from .cli import main

sys.exit(main())
