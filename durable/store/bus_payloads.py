"""Messages sent by reference: the payload lives in a row, the bus carries its id."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from durable.models import BusPayload


def save(topic: str, payload: dict[str, Any], *, using: str) -> int:
    return BusPayload.objects.using(using).create(topic=topic[:255], payload=payload).pk


def load(payload_id: int, *, using: str) -> dict[str, Any] | None:
    """The stored payload, or None if it was deleted (or its transaction rolled back)."""
    row = BusPayload.objects.using(using).filter(pk=payload_id).values_list("payload").first()
    return row[0] if row is not None else None


def delete_older_than(cutoff: datetime, *, using: str) -> int:
    """Delete payloads created before `cutoff`; return how many were deleted."""
    deleted, _ = BusPayload.objects.using(using).filter(created_at__lt=cutoff).delete()
    return deleted
