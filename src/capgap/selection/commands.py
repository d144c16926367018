"""`capgap predict` and `capgap select`: their flags and what they print (registered by `capgap.cli`).

    capgap predict CONFIG [--sample 64] [--by rsr] [--store PATH]
    capgap select CONFIG --budget 30% [--prune rsr --keep 4] [--store PATH] [--run-dir DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from capgap.errors import CapgapError

DEFAULT_STORE = Path("capgap-results") / "store.sqlite"


def add_parsers(sub) -> None:
    from capgap.selection.predict import DEFAULT_SAMPLE
    from capgap.selection.predictors import PREDICTORS
    from capgap.study.executors import EXECUTORS

    p = sub.add_parser("predict", help="rank the teachers by cheap predictors (no training): the student's view "
                                       "of each teacher's rationales")
    p.add_argument("config", nargs="?", help="study YAML (default: the embedded quickstart)")
    p.add_argument("--sample", type=int, default=DEFAULT_SAMPLE,
                   help=f"rationales scored per teacher and protocol (default {DEFAULT_SAMPLE}): more is steadier "
                        "and costs one forward pass each")
    p.add_argument("--by", default="rsr", choices=list(PREDICTORS), help="the predictor that ranks the table")
    p.add_argument("--batch-size", type=int, default=8, help="rows per forward pass")
    p.add_argument("--store", type=Path, default=DEFAULT_STORE, help=f"results store (default {DEFAULT_STORE})")
    p.add_argument("--data-dir", help="base folder of the config's data paths (or CAPGAP_DATA_DIR)")
    s = sub.add_parser("select", help="choose a teacher by successive halving over short pilot fine-tunes, "
                                      "within a share of the full grid's compute")
    s.add_argument("config", nargs="?", help="study YAML, one task and one student (default: the embedded "
                                             "quickstart)")
    s.add_argument("--budget", default="30%", help="share of the full grid's compute: 30%%, 30 or 0.3 (default 30%%)")
    s.add_argument("--prune", choices=list(PREDICTORS), help="before round 1, keep only the --keep teachers this "
                                                              "predictor ranks best (runs capgap predict)")
    s.add_argument("--keep", type=int, default=4, help="teachers --prune keeps, at least 2 (default 4)")
    s.add_argument("--store", type=Path, default=DEFAULT_STORE, help=f"results store (default {DEFAULT_STORE})")
    s.add_argument("--run-dir", type=Path, help="checkpoints folder (default: capgap-results/STUDY)")
    s.add_argument("--data-dir", help="base folder of the config's data paths (or CAPGAP_DATA_DIR)")
    s.add_argument("--executor", default="local", choices=list(EXECUTORS), help="as for capgap run")


def cmd_predict(args: argparse.Namespace, quiet, config_path) -> int:
    from capgap.config import load_config
    from capgap.report.choosing import prediction_tables
    from capgap.report.markdown import table_lines
    from capgap.selection.predict import predict_study
    from capgap.store import Store
    from capgap.study.runner import log

    if not 1 <= args.sample <= 100_000 or not 1 <= args.batch_size <= 4096:
        raise CapgapError("--sample and --batch-size must be positive (at most 100000 and 4096)")
    config = load_config(config_path(args.config), args.data_dir)
    quiet()
    with Store(args.store) as store:
        rows = predict_study(config, store, sample=args.sample, batch_size=args.batch_size, log=log)
    for title, table, line in prediction_tables(rows, args.by):
        print("\n".join([f"### {title}", "", *table_lines(table), line, ""]))
    return 0


def cmd_select(args: argparse.Namespace, quiet, config_path) -> int:
    from capgap.config import load_config
    from capgap.report.choosing import selection_table
    from capgap.report.markdown import table_lines
    from capgap.selection.predict import predict_study
    from capgap.selection.select import parse_budget, select_study
    from capgap.store import Store
    from capgap.study.executors import make_executor
    from capgap.study.runner import log

    budget = parse_budget(args.budget)
    if args.keep < 2:
        raise CapgapError(f"--keep must be at least 2 (one teacher leaves nothing to choose), got {args.keep}")
    config = load_config(config_path(args.config), args.data_dir)
    quiet()
    run_dir = args.run_dir or args.store.parent / config.name
    executor = make_executor(args.executor)
    try:
        with Store(args.store) as store:
            predict = lambda: predict_study(config, store, log=log)  # noqa: E731  (only with --prune)
            result = select_study(config, store, run_dir, budget, executor,
                                  (args.prune, args.keep) if args.prune else None, predict)
    finally:
        executor.close()
    before, table, after = selection_table(result)
    print("\n".join([*before, "", *table_lines(table), *after]))
    return 0
