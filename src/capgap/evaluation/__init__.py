"""Evaluation: prompts, the store-backed runner, accuracy with confidence intervals."""

from capgap.evaluation.keys import evaluation_key
from capgap.evaluation.metrics import wilson_interval
from capgap.evaluation.prompts import PROMPT_STYLES, PromptConfig, render
from capgap.evaluation.runner import EvalResult, evaluate

__all__ = ["PROMPT_STYLES", "EvalResult", "PromptConfig", "evaluate", "evaluation_key", "render",
           "wilson_interval"]
