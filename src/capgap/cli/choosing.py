"""`capgap predict` and `capgap select`: flags, a call to `capgap.api`, and the tables they print.

    capgap predict CONFIG [--sample 64] [--by rsr] [--store PATH]
    capgap select CONFIG --budget 30% [--prune rsr --keep 4] [--store PATH] [--run-dir DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from capgap import api
from capgap.cli.options import (
    add_config,
    add_data_dir,
    add_executor,
    add_knob,
    add_store,
    executor_options,
    quiet_libraries,
)


def add_parsers(sub) -> None:
    from capgap.evaluation.predictors import PREDICTORS
    from capgap.selection.predict import DEFAULT_SAMPLE

    p = sub.add_parser("predict", help="rank the teachers by cheap predictors (no training): the student's view "
                                       "of each teacher's rationales")
    add_config(p)
    p.add_argument("--sample", type=int, default=DEFAULT_SAMPLE,
                   help=f"rationales scored per teacher and protocol (default {DEFAULT_SAMPLE}): more is steadier "
                        "and costs one forward pass each")
    p.add_argument("--by", default="rsr", choices=list(PREDICTORS), help="the predictor that ranks the table")
    p.add_argument("--batch-size", type=int, default=8, help="rows per forward pass")
    add_store(p)
    add_data_dir(p)
    s = sub.add_parser("select", help="choose a teacher by successive halving over short pilot fine-tunes, "
                                      "within a share of the full grid's compute")
    add_config(s, what="study YAML, one task and one student")
    s.add_argument("--budget", default="30%", help="share of the full grid's compute: 30%%, 30 or 0.3 (default 30%%)")
    s.add_argument("--prune", choices=list(PREDICTORS), help="before round 1, keep only the --keep teachers this "
                                                              "predictor ranks best (runs capgap predict)")
    s.add_argument("--keep", type=int, default=4, help="teachers --prune keeps, at least 2 (default 4)")
    add_store(s)
    s.add_argument("--run-dir", type=Path, help="checkpoints folder (default: capgap-results/STUDY)")
    add_data_dir(s)
    add_executor(s)


def add_screen_parser(sub) -> None:
    from capgap.config.schema import ScreeningConfig

    s = sub.add_parser("screen", help="per task, every teacher's accuracy and the largest gap between them: the "
                                      "paper's rule keeps a task only where teachers differ")
    add_config(s, optional=False)
    add_knob(s, ScreeningConfig, "min_teacher_gap", "--min-gap")
    add_knob(s, ScreeningConfig, "sample")
    s.set_defaults(min_gap=None, sample=None)  # unset: the config's screening, else the knobs' defaults
    add_store(s)
    add_data_dir(s)


def cmd_screen(args: argparse.Namespace) -> int:
    from capgap.report.markdown import table_lines
    from capgap.report.tables import pct

    quiet_libraries()
    for result in api.screen(args.config, store=args.store, data_dir=args.data_dir, min_gap=args.min_gap,
                             sample=args.sample):
        rows = [[s["teacher"], s["kind"], pct(s["accuracy"]),
                 f"[{pct(s['ci95'][0])}, {pct(s['ci95'][1])}]" if s["ci95"] else "-", str(s["n"]), s["how"]]
                for s in result["scores"]]
        table = (["teacher", "kind", "accuracy", "95% CI", "n", "measured"], rows)
        print("\n".join([f"### {result['task']}: {'kept' if result['kept'] else 'dropped'}", "",
                         *table_lines(table), result["reason"], ""]))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from capgap.report.choosing import prediction_tables
    from capgap.report.markdown import table_lines

    quiet_libraries()
    rows = api.predict(args.config, store=args.store, data_dir=args.data_dir, sample=args.sample,
                       batch_size=args.batch_size)
    for title, table, line in prediction_tables(rows, args.by):
        print("\n".join([f"### {title}", "", *table_lines(table), line, ""]))
    return 0


def cmd_select(args: argparse.Namespace) -> int:
    from capgap.report.choosing import selection_table
    from capgap.report.markdown import table_lines

    quiet_libraries()
    result = api.select(args.config, budget=args.budget, prune=args.prune, keep=args.keep, store=args.store,
                        run_dir=args.run_dir, data_dir=args.data_dir, **executor_options(args))
    before, table, after = selection_table(result)
    print("\n".join([*before, "", *table_lines(table), *after]))
    return 0
