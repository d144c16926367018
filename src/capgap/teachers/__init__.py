"""Teachers: where training rationales come from (reference, imported files, models)."""

from capgap.teachers.base import Rationale, TeacherRationales, normalize_question, normalize_rationale
from capgap.teachers.imported import ImportSource, imported_rationales
from capgap.teachers.reference import reference_rationales

__all__ = ["ImportSource", "Rationale", "TeacherRationales", "imported_rationales", "normalize_question",
           "normalize_rationale", "reference_rationales"]
