"""capgap: does distilling chain-of-thought from a teacher beat the student as it was?

Public API (everything else is private and may change):

    from capgap import Store, evaluate, load_task, PromptConfig, Decoding
    with Store("results.sqlite") as store:
        result = evaluate("smollm2-135m-instruct", load_task("arith", n=50), store)
        print(result.summary())
        verdicts = analyse_store(store)            # after `capgap run`: gains, CIs, tests, recommendation
        write_reports(store, {"html": Path("report.html")})
        rows = predict_study(load_config("study.yaml"), store)   # cheap predictors per teacher, no training

One function per command, returning data (`capgap.api`; the command line only prints):

    result = capgap.run("study.yaml")          # capgap run: result.study (its analysis), result.reports
    capgap.validate("study.yaml").problems     # capgap validate;  capgap.plan(...), capgap.predict(...),
    capgap.api.report("capgap-results/quickstart", format="md")   # capgap.select(...), capgap report

Layers, top to bottom. A package (or single-file module) imports only from the layers below it, deferred
imports inside functions included, and never from another one on its own line; `tests/test_layers.py` reads
this block and checks every import against it, so the package graph has no cycle.

    capgap __main__                 # this public API; `python -m capgap`
    cli                             # the command line: flags, one line per error, printing
    api                             # one function per command, returning data
    report                          # HTML, Markdown and JSON reports and the run's table, from an analysis
    selection                       # choosing a teacher cheaply: predictor runs, successive halving
    analysis                        # verdicts, power and plans from the store alone
    study                           # a study's plan (specs, keys, work) and its execution (jobs, executors)
    teachers training               # rationales from teachers; fine-tuning students
    config                          # the study YAML's typed sections and their loading
    evaluation                      # prompts, evaluation runs and their keys, scoring, cheap predictors
    tasks models store              # datasets and answers; models and engines; the SQLite results store
    filepaths logs                  # paths of files capgap writes; progress lines on stderr
    errors redact knobs processes version digests   # leaf helpers, below everything
"""

from capgap import api
from capgap.analysis import analyse_store
from capgap.api import plan, predict, rebase, run, screen, select, validate
from capgap.config import load_config
from capgap.errors import CapgapError
from capgap.evaluation import EvalResult, PromptConfig, evaluate
from capgap.models import LoadedModel, load_model, resolve
from capgap.models.generation import Decoding
from capgap.report import write_reports
from capgap.selection.predict import predict_study
from capgap.selection.select import select_study
from capgap.store import Store
from capgap.tasks import AnswerType, Item, Task, load_task
from capgap.version import __version__

__all__ = [
           "AnswerType",
           "CapgapError",
           "Decoding",
           "EvalResult",
           "Item",
           "LoadedModel",
           "PromptConfig",
           "Store",
           "Task",
           "__version__",
           "analyse_store",
           "api",
           "evaluate",
           "load_config",
           "load_model",
           "load_task",
           "plan",
           "predict",
           "predict_study",
           "rebase",
           "resolve",
           "run",
           "screen",
           "select",
           "select_study",
           "validate",
           "write_reports",
]
