"""Student training: tokenization identical to evaluation, TRL SFTTrainer with LoRA or full fine-tuning."""

from capgap.training.sft import TrainResult, directory_fingerprint, tokenize_examples, train

__all__ = ["TrainResult", "directory_fingerprint", "tokenize_examples", "train"]
