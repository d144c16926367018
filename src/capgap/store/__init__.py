"""The SQLite results store."""

from capgap.store.compare import differences, snapshot
from capgap.store.evaluations import EvalRecord
from capgap.store.schema import SCHEMA_VERSION
from capgap.store.sqlite import Store
from capgap.store.study import CELL_COLUMNS, CellRow

__all__ = ["CELL_COLUMNS", "SCHEMA_VERSION", "CellRow", "EvalRecord", "Store", "differences", "snapshot"]
