"""``python -m rldispatch.cli`` runs the ``rldispatch`` command."""

import sys

from rldispatch.cli import main

sys.exit(main())
