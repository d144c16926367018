"""Student training: tokenization identical to evaluation, TRL SFTTrainer with LoRA or full fine-tuning."""

from capgap.training.checkpoints import METADATA, checkpoint_problem, clean_staging, read_metadata
from capgap.training.sft import TRAINING_VERSION, TrainingSet, TrainResult, planned_steps, tokenize_examples, train

__all__ = ["METADATA", "TRAINING_VERSION", "TrainResult", "TrainingSet", "checkpoint_problem", "clean_staging",
           "planned_steps", "read_metadata", "tokenize_examples", "train"]
