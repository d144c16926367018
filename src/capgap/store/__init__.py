"""The SQLite results store."""

from capgap.store.compare import differences, snapshot
from capgap.store.sqlite import SCHEMA_VERSION, EvalRecord, Store
from capgap.store.study import CELL_COLUMNS

__all__ = ["CELL_COLUMNS", "SCHEMA_VERSION", "EvalRecord", "Store", "differences", "snapshot"]
