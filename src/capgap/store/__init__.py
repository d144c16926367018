"""The SQLite results store."""

from capgap.store.sqlite import SCHEMA_VERSION, EvalRecord, Store

__all__ = ["SCHEMA_VERSION", "EvalRecord", "Store"]
