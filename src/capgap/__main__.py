"""`python -m capgap` = the `capgap` command."""

import sys

from capgap.cli import main

sys.exit(main())
