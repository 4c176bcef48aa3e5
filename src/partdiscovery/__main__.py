"""``python -m partdiscovery`` (also what ``torchrun -m partdiscovery`` runs)."""

import sys

from partdiscovery.cli.main import main

sys.exit(main())
