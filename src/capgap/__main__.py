"""`python -m capgap` = the `capgap` command."""

from capgap.cli import command

# vLLM spawns worker processes when VLLM_ENABLE_V1_MULTIPROCESSING=1; they import this module again
if __name__ == "__main__":
    command()
