"""`python -m capgap` = the `capgap` command."""

import sys

from capgap.cli import main

if __name__ == "__main__":  # vLLM spawns worker processes, which import this module again
    sys.exit(main())
