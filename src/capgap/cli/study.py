"""`capgap run`, `report`, `validate` and `plan`: flags, a call to `capgap.api`, and what they print.

    capgap run [CONFIG]                 # a distillation study; no CONFIG: the embedded quickstart
    capgap report capgap-results/quickstart --format html   # from the store alone
    capgap validate CONFIG [--lengths N]
    capgap plan CONFIG [--detect 3pp] [--lengths N]
    capgap rebase CONFIG --to CHECKPOINT [--from CHECKPOINT] [--budget 30%]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from capgap import api
from capgap.cli.options import (
    add_config,
    add_data_dir,
    add_executor,
    add_lengths,
    add_store,
    executor_options,
    quiet_libraries,
)
from capgap.filepaths import DEFAULT_STORE
from capgap.redact import redact


def add_parsers(sub) -> None:
    from capgap.report import RENDERERS
    from capgap.study.workplan import GENERATE_TFLOPS, TRAIN_TFLOPS

    run = sub.add_parser("run", help="run a distillation study (default: the embedded quickstart)")
    add_config(run)
    add_store(run)
    run.add_argument("--run-dir", type=Path, help="checkpoints folder (default: capgap-results/STUDY); with Ray on "
                                                   "several machines, a folder every worker sees")
    add_data_dir(run)
    add_executor(run)
    report = sub.add_parser("report", help="build a report (verdicts, capacity gap, recommendation) from a store")
    report.add_argument("source", nargs="?", default=str(DEFAULT_STORE),
                        help=f"a results store, its folder, or a study's run folder (default {DEFAULT_STORE})")
    report.add_argument("--format", default="html", choices=list(RENDERERS))
    report.add_argument("-o", "--output", type=Path, help="file to write (default: report.FORMAT in the run folder "
                        "or beside the store)")
    report.add_argument("--study", help="only this study (default: every study in the store)")
    rebase = sub.add_parser("rebase", help="move a finished study onto a lineage's new checkpoint: its baseline, "
                                           "the teachers that matter re-run, what carried over")
    add_config(rebase, optional=False)
    rebase.add_argument("--to", required=True, metavar="CHECKPOINT",
                        help="the new checkpoint (a model name, folder or Hub id)")
    rebase.add_argument("--from", dest="from_", metavar="CHECKPOINT",
                        help="the checkpoint the study was run on (default: the lineage's newest)")
    rebase.add_argument("--budget", help="re-run only this share of the teachers on the new checkpoint: the "
                                         "leader, then those the predictor rsr says moved most (30%%, 30 or 0.3; "
                                         "default: every teacher)")
    add_store(rebase)
    rebase.add_argument("--run-dir", type=Path, help="checkpoints folder (default: capgap-results/STUDY)")
    add_data_dir(rebase)
    add_executor(rebase)
    validate = sub.add_parser("validate", help="check a study YAML and its data; list every problem")
    add_config(validate, optional=False)
    add_data_dir(validate)
    add_lengths(validate)
    plan = sub.add_parser("plan", help="what a run does, what the store holds and what it costs; with --detect, "
                                       "the test items and seeds needed to detect a gain (from a pilot)")
    add_config(plan, optional=False)
    plan.add_argument("--detect", help="the gain to detect: 3pp, 3 (points) or 0.03 (a share)")
    plan.add_argument("--train-tflops", type=float, default=TRAIN_TFLOPS,
                      help=f"effective TFLOP/s of one GPU in training, for the GPU-hour estimate (default "
                           f"{TRAIN_TFLOPS:g}: 40%% of an H100's bf16 peak)")
    plan.add_argument("--generate-tflops", type=float, default=GENERATE_TFLOPS,
                      help=f"effective TFLOP/s of one GPU in generation (default {GENERATE_TFLOPS:g})")
    add_store(plan, "pilot store")
    plan.add_argument("--study", help="pilot study in the store (default: the config's, else every study)")
    add_data_dir(plan)
    add_lengths(plan)


def cmd_run(args: argparse.Namespace) -> int:
    from capgap.report.console import study_tables

    quiet_libraries()
    result = api.run(args.config, store=args.store, run_dir=args.run_dir, data_dir=args.data_dir,
                     **executor_options(args))
    print(study_tables(result.study))
    html, md, js = result.reports
    print(f"report: {html} (also {md.name}, {js.name}; rebuild with `capgap report {result.run_dir}`)")
    return 0


def cmd_rebase(args: argparse.Namespace) -> int:
    from capgap.report.console import lineage_tables

    quiet_libraries()
    result = api.rebase(args.config, to=args.to, from_=args.from_, budget=args.budget, store=args.store,
                        run_dir=args.run_dir, data_dir=args.data_dir, **executor_options(args))
    print(lineage_tables(result.study))
    if result.config_edit:
        print(f"next: write in {args.config}: {result.config_edit}")
    html, md, js = result.reports
    print(f"report: {html} (also {md.name}, {js.name}; rebuild with `capgap report {result.run_dir}`)")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    print(f"report: {api.report(args.source, format=args.format, output=args.output, study=args.study)}")
    return 0


def _print_lengths(lines: list[str]) -> None:
    if lines:
        print("\nAnswer lengths before distillation (a fair baseline is not cut at its limit):")
        for line in lines:
            print(f"  {line}")


def cmd_validate(args: argparse.Namespace) -> int:
    api.check_lengths(args.lengths)  # before anything prints
    if args.lengths:
        quiet_libraries()
    result = api.validate(args.config, data_dir=args.data_dir, lengths=args.lengths, progress=sys.stderr.isatty())
    for problem in result.problems:
        print(f"{args.config}: {redact(problem)}")
    if result.problems:
        print(f"capgap: error: {len(result.problems)} problem(s) in {args.config}; fix them and validate again",
              file=sys.stderr)
        return 2
    print(f"{args.config}: ok")
    for line in result.plan:
        print(f"  {line}")
    _print_lengths(result.lengths)
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    if args.lengths:
        quiet_libraries()
    result = api.plan(args.config, store=args.store, detect=args.detect, study=args.study, data_dir=args.data_dir,
                      train_tflops=args.train_tflops, generate_tflops=args.generate_tflops, lengths=args.lengths,
                      progress=sys.stderr.isatty())
    print(result.work, end="")
    if result.detection is not None:
        print()
        print(result.detection, end="")
    _print_lengths(result.lengths)
    return 0
