"""Models: built-in aliases, where a model comes from (and its fingerprint), precision, loading, generation."""

from capgap.models.loading import LoadedModel, load_model
from capgap.models.precision import DTYPES, Precision, decide, resolve_dtype
from capgap.models.registry import ALIASES
from capgap.models.sources import ModelSource, resolve

__all__ = ["ALIASES", "DTYPES", "LoadedModel", "ModelSource", "Precision", "decide", "load_model", "resolve",
           "resolve_dtype"]
