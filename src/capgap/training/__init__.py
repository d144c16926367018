"""Student training: tokenization identical to evaluation, TRL SFTTrainer with LoRA or full fine-tuning."""

from capgap.training.sft import (
    METADATA,
    TRAINING_VERSION,
    TrainingSet,
    TrainResult,
    planned_steps,
    read_metadata,
    tokenize_examples,
    train,
)

__all__ = ["METADATA", "TRAINING_VERSION", "TrainResult", "TrainingSet", "planned_steps", "read_metadata",
           "tokenize_examples", "train"]
