"""Student training: tokenization identical to evaluation, TRL SFTTrainer with LoRA or full fine-tuning."""

from capgap.training.sft import TrainResult, tokenize_examples, train

__all__ = ["TrainResult", "tokenize_examples", "train"]
