"""The paper broker's records, re-exported: they live in the core, ``nq_ray.execution.records``, so the
pure book does not import the store. The store persists them (``repository.py``)."""

from nq_ray.execution.records import (
    AccountSnapshot,
    FillRecord,
    Mark,
    OrderEvent,
    OrderRecord,
    OrderRole,
    PositionRecord,
    StoredState,
    UnitOfWork,
)

__all__ = [
    "AccountSnapshot",
    "FillRecord",
    "Mark",
    "OrderEvent",
    "OrderRecord",
    "OrderRole",
    "PositionRecord",
    "StoredState",
    "UnitOfWork",
]
