"""A tiny model the demo's and the tests' steps write to (transactional steps, say)."""

from __future__ import annotations

from django.db import models


class LedgerEntry(models.Model):
    """One booked side effect of a step. `key` is unique, so a booking is made once."""

    key = models.CharField(max_length=200, unique=True)
    workflow_id = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        return self.key
