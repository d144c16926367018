"""Models: built-in aliases, where a model comes from (and its fingerprint), loading, generation."""

from capgap.models.loading import DTYPES, LoadedModel, load_model, resolve_dtype
from capgap.models.registry import ALIASES
from capgap.models.sources import ModelSource, resolve

__all__ = ["ALIASES", "DTYPES", "LoadedModel", "ModelSource", "load_model", "resolve", "resolve_dtype"]
