"""capgap: does distilling chain-of-thought from a teacher beat the student as it was?

Public API (everything else is private and may change):

    from capgap import Store, evaluate, load_task, PromptConfig, Decoding
    with Store("results.sqlite") as store:
        result = evaluate("smollm2-135m-instruct", load_task("arith", n=50), store)
        print(result.summary())
        verdicts = analyse_store(store)            # after `capgap run`: gains, CIs, tests, recommendation
        write_reports(store, {"html": Path("report.html")})
        rows = predict_study(load_config("study.yaml"), store)   # cheap predictors per teacher, no training
"""

from capgap.analysis import analyse_store
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

__version__ = "0.1.0"

__all__ = ["AnswerType", "CapgapError", "Decoding", "EvalResult", "Item", "LoadedModel", "PromptConfig",
           "Store", "Task", "__version__", "analyse_store", "evaluate", "load_config", "load_model", "load_task",
           "predict_study", "resolve", "select_study", "write_reports"]
