"""`python -m capgap` = the `capgap` command."""

import sys

from capgap.cli import main

# vLLM spawns worker processes when VLLM_ENABLE_V1_MULTIPROCESSING=1; they import this module again
if __name__ == "__main__":
    sys.exit(main())
