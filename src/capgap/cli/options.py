"""Options several commands share, declared once: the results store, the data folder, the study YAML, the
executor and Ray flags of `run` and `select`, the answer-length probe, and flags generated from a setting's
class (`knob` fields: the default, choices, range and help text are the config's own)."""

from __future__ import annotations

import argparse
import logging
import os
import warnings
from dataclasses import MISSING, fields
from pathlib import Path

from capgap.errors import CapgapError
from capgap.filepaths import DEFAULT_STORE
from capgap.knobs import range_problem


def add_store(parser: argparse.ArgumentParser, what: str = "results store") -> None:
    parser.add_argument("--store", type=Path, default=DEFAULT_STORE, help=f"{what} (default {DEFAULT_STORE})")


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="base folder of the config's data paths (or CAPGAP_DATA_DIR)")


def add_config(parser: argparse.ArgumentParser, optional: bool = True, what: str = "study YAML") -> None:
    if optional:
        parser.add_argument("config", nargs="?", help=f"{what} (default: the embedded quickstart)")
    else:
        parser.add_argument("config", help=what)


def add_executor(parser: argparse.ArgumentParser) -> None:
    """--executor and the Ray flags (`run` and `select`)."""
    from capgap.study.executors import EXECUTORS

    group = parser.add_argument_group("where jobs run")
    group.add_argument("--executor", default="local", choices=list(EXECUTORS),
                       help="local: every job in this process; ray: jobs as Ray tasks over a cluster's GPUs/machines")
    group.add_argument("--ray-address", help="the Ray cluster to join (e.g. auto, or HEAD_IP:6379; default: start "
                                             "a local one)")
    group.add_argument("--cpus-per-job", type=float, default=1.0, help="Ray: CPUs each training/evaluation job asks "
                                                                       "for (also its thread count)")
    group.add_argument("--gpus-per-job", type=float, help="Ray: GPUs each job asks for (default: 1 when the cluster "
                                                          "has GPUs, else 0)")


def executor_options(args: argparse.Namespace) -> dict:
    return {"executor": args.executor, "ray_address": args.ray_address, "cpus_per_job": args.cpus_per_job,
            "gpus_per_job": args.gpus_per_job}


def add_lengths(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lengths", type=int, default=0, metavar="N",
                        help="generate the students' answers to N test items and propose the max_new_tokens a "
                             "fair baseline needs (its 99th-percentile length); default 0: generate nothing")


def add_knob(parser: argparse.ArgumentParser, cls: type, name: str, flag: str | None = None,
             help: str | None = None, prefix: str = "") -> None:
    """A flag for field `name` of setting class `cls`: its default, choices and help (after `prefix`, unless
    `help` replaces it) come from the field's `knob`; its range is checked by `check_knobs`, with the config's
    own words."""
    f = next(f for f in fields(cls) if f.name == name)
    meta = f.metadata
    default = None if f.default is MISSING else f.default
    kind = type(default) if isinstance(default, (int, float)) and not isinstance(default, bool) else None
    flag = flag or "--" + name.replace("_", "-")
    choices = list(meta["choices"]) if meta.get("choices") else None
    action = parser.add_argument(flag, default=default, type=kind, choices=choices,
                                 help=help or prefix + meta["help"])
    ranges = dict(parser.get_default("knob_ranges") or {})
    if any(meta.get(k) is not None for k in ("min", "max", "above", "below")):
        ranges[action.dest] = (flag, meta)
    parser.set_defaults(knob_ranges=ranges)


def check_knobs(args: argparse.Namespace) -> None:
    """Each knob flag's value is inside its field's range, or one error line naming the flag."""
    for dest, (flag, meta) in (getattr(args, "knob_ranges", None) or {}).items():
        value = getattr(args, dest)
        problem = range_problem(value, meta) if value is not None else None
        if problem:
            raise CapgapError(f"{flag}: {problem}")


def quiet_libraries() -> None:
    """transformers' own progress bars and warnings would drown capgap's one-line output."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")  # bars capgap does not draw (GGUF conversion); its own pass disable=
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # also for jobs in other processes (Ray, accelerate)
    # Library deprecation and data-loader notices say nothing about the user's study.
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
