"""Study configs: typed sections (schema) and YAML loading with path-aware validation (load)."""

from capgap.config.load import load_config, parse, read_yaml
from capgap.config.schema import (
    PROTOCOLS,
    EvaluationConfig,
    PromptConfig,
    SplitConfig,
    StudyConfig,
    TaskConfig,
    TeacherConfig,
    TrainingConfig,
    describe_budget,
)

__all__ = ["PROTOCOLS", "EvaluationConfig", "PromptConfig", "SplitConfig", "StudyConfig", "TaskConfig",
           "TeacherConfig", "TrainingConfig", "describe_budget", "load_config", "parse", "read_yaml"]
