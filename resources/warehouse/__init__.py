"""The warehouse itself: bulk upserts into time-series tables (and, next to it, the storage API)."""

from .upsert import (
    AuditContext,
    UpsertInputError,
    UpsertResult,
    upsert_dataframe,
    upsert_frame,
    validate_frame,
)

__all__ = [
    "AuditContext",
    "UpsertInputError",
    "UpsertResult",
    "upsert_dataframe",
    "upsert_frame",
    "validate_frame",
]
