"""The `capgap` command line: each command parses its flags, calls `capgap.api` (or the library), and prints.

    capgap eval --model smollm2-135m-instruct --task svamp --data ../shared/data/svamp/SVAMP.json --limit 50
    capgap run [CONFIG]          # a distillation study; no CONFIG: the embedded quickstart
    capgap validate CONFIG
    capgap report capgap-results/quickstart --format html   # from the store alone
    capgap plan CONFIG [--detect 3pp]   # work, stored progress, cost; test items x seeds to detect a gain
    capgap predict CONFIG        # rank teachers by cheap predictors, no training
    capgap select CONFIG --budget 30%   # choose a teacher by successive halving over pilot fine-tunes
    capgap screen CONFIG [--min-gap 30]  # per task, the teachers' accuracy gap: kept where they differ
    capgap models
    capgap tasks

User errors (bad names, files, fields, models) print one line `capgap: error: ...` and exit 2.
"""

from __future__ import annotations

import argparse
import errno
import sys

from capgap.cli import choosing, evaluate, study
from capgap.cli.options import check_knobs
from capgap.errors import CapgapError
from capgap.models import vllm_engine
from capgap.processes import exit_process
from capgap.redact import redact

# errno values that mean the machine refused a read or write (not a bug, not a network error)
MACHINE_REFUSED = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO}

COMMANDS = {"eval": evaluate.cmd_eval, "models": evaluate.cmd_models, "tasks": evaluate.cmd_tasks,
            "run": study.cmd_run, "rebase": study.cmd_rebase, "validate": study.cmd_validate,
            "report": study.cmd_report, "plan": study.cmd_plan,
            "predict": choosing.cmd_predict, "select": choosing.cmd_select, "screen": choosing.cmd_screen}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="capgap", description="Measure whether CoT distillation helps.")
    sub = parser.add_subparsers(dest="command", required=True)
    evaluate.add_parser(sub)
    study.add_parsers(sub)
    choosing.add_parsers(sub)
    choosing.add_screen_parser(sub)
    sub.add_parser("models", help="list built-in model aliases")
    sub.add_parser("tasks", help="list built-in tasks")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_knobs(args)
        return COMMANDS[args.command](args)
    except CapgapError as e:
        print(f"capgap: error: {redact(' '.join(str(e).split()))}", file=sys.stderr)
        return 2
    except OSError as e:  # the machine refused (disk full, permissions): what the store committed is kept
        if e.errno not in MACHINE_REFUSED:
            raise
        where = f" {e.filename}" if e.filename else ""
        print(f"capgap: error: could not read or write{where} ({e.strerror or e}); free space or fix the "
              "permissions, then run again: finished work is kept in the store", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("capgap: interrupted; finished items are kept in the store, run again to continue",
              file=sys.stderr)
        return 130


def command() -> None:
    """The `capgap` executable and `python -m capgap`: `main` on the process's arguments, then a quick exit."""
    exit_process(main(), before=vllm_engine.abandon_engines)


if __name__ == "__main__":
    command()
