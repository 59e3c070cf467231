"""System checks of the telemetry settings: each bad value is named, good ones pass."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.core.checks import run_checks
from django.test import override_settings

from durable.telemetry import metrics


def messages(**options: Any) -> dict[str, str]:
    with override_settings(DURABLE={**settings.DURABLE, **options}):
        return {
            m.id: f"{m.msg} {m.hint or ''}"
            for m in run_checks(tags=["durable"])
            if m.id and m.id.startswith("durable.")
        }


@pytest.mark.parametrize("key", ["CAPTURE_LOGS", "CAPTURE_STDOUT"])
@pytest.mark.parametrize("value", ["no", 0, None])
def test_capture_switches_must_be_booleans(key: str, value: object) -> None:
    found = messages(**{key: value})
    assert set(found) == {"durable.E050"}
    assert key in found["durable.E050"]
    assert repr(value) in found["durable.E050"]


@pytest.mark.parametrize("value", ["LOUD", True, 2.5, ["DEBUG"]])
def test_a_capture_level_that_is_no_logging_level_is_e051(value: object) -> None:
    found = messages(CAPTURE_LEVEL=value)
    assert set(found) == {"durable.E051"}
    assert repr(value) in found["durable.E051"]


@pytest.mark.parametrize("value", [None, "DEBUG", "info", 5])
def test_logging_levels_pass(value: object) -> None:
    assert messages(CAPTURE_LEVEL=value, CAPTURE_LOGS=False, CAPTURE_STDOUT=True) == {}


@pytest.mark.parametrize("token", ["", "   ", 1234])
def test_a_metrics_token_must_be_a_non_empty_string(token: object) -> None:
    assert set(messages(METRICS_TOKEN=token)) == {"durable.E052"}


def test_a_metrics_token_without_prometheus_client_is_e053(monkeypatch: Any) -> None:
    assert messages(METRICS_TOKEN="t0ken") == {}
    monkeypatch.setattr(metrics, "CollectorRegistry", None)
    found = messages(METRICS_TOKEN="t0ken")
    assert set(found) == {"durable.E053"}
    assert "durable[prometheus]" in found["durable.E053"]
