from __future__ import annotations

from datetime import timedelta

import pytest

from durable import Retry


@pytest.mark.parametrize(("attempt", "delay"), [(1, 2.0), (2, 4.0), (3, 8.0), (10, 1024.0)])
def test_exponential_backoff_waits_base_to_the_power_of_the_attempt(
    attempt: int, delay: float
) -> None:
    assert Retry(backoff="exponential", base=2).delay_after(attempt) == delay


@pytest.mark.parametrize(("attempt", "delay"), [(1, 5.0), (2, 10.0), (3, 15.0)])
def test_linear_backoff_waits_attempt_times_base(attempt: int, delay: float) -> None:
    assert Retry(backoff="linear", base=5).delay_after(attempt) == delay


@pytest.mark.parametrize("attempt", [1, 2, 7])
def test_constant_backoff_always_waits_base(attempt: int) -> None:
    assert Retry(backoff="constant", base=3).delay_after(attempt) == 3.0


@pytest.mark.parametrize(
    ("retry", "attempt"),
    [
        (Retry(backoff="exponential", base=2, max_backoff=60), 6),  # 64 > 60
        (Retry(backoff="linear", base=20, max_backoff=60), 4),  # 80 > 60
        (Retry(backoff="constant", base=90, max_backoff=60), 1),
        (Retry(backoff="exponential", base=2, max_backoff=timedelta(minutes=1)), 6),
    ],
)
def test_every_backoff_is_capped_at_max_backoff(retry: Retry, attempt: int) -> None:
    assert retry.delay_after(attempt) == 60.0


def test_huge_exponential_backoff_is_capped_instead_of_overflowing() -> None:
    assert Retry(base=2, max_backoff=3600).delay_after(5000) == 3600.0
    assert Retry(base=2.5, max_backoff=3600).delay_after(5000) == 3600.0


def test_default_retry_is_three_exponential_attempts_capped_at_an_hour() -> None:
    retry = Retry()
    assert (retry.max_attempts, retry.backoff, retry.base, retry.max_backoff) == (
        3,
        "exponential",
        2,
        3600,
    )
    assert retry.problems() == []


def test_valid_retry_has_no_problems() -> None:
    retry = Retry(max_attempts=1, backoff="linear", base=0, max_backoff=timedelta(0))
    assert retry.problems() == []


@pytest.mark.parametrize(
    ("retry", "fragment"),
    [
        (Retry(max_attempts=0), "max_attempts must be an int >= 1, got 0"),
        (Retry(max_attempts=2.5), "max_attempts must be an int >= 1, got 2.5"),  # type: ignore[arg-type]
        (Retry(max_attempts=True), "max_attempts must be an int >= 1, got True"),
        (Retry(backoff="quadratic"), "backoff must be one of exponential, linear, constant"),  # type: ignore[arg-type]
        (Retry(base=-1), "base must be a finite number >= 0, got -1"),
        (Retry(base="2"), "base must be a finite number >= 0, got '2'"),  # type: ignore[arg-type]
        (Retry(base=float("nan")), "base must be a finite number >= 0, got nan"),
        (Retry(base=float("inf")), "base must be a finite number >= 0, got inf"),
        (Retry(max_backoff=-1), "max_backoff must be >= 0 seconds, got -1"),
        (Retry(max_backoff=timedelta(seconds=-1)), "max_backoff must be >= 0 seconds"),
        (Retry(max_backoff="soon"), "max_backoff must be >= 0 seconds, got 'soon'"),  # type: ignore[arg-type]
        (Retry(max_backoff=float("nan")), "max_backoff must be >= 0 seconds, got nan"),
    ],
)
def test_bad_retry_values_are_reported(retry: Retry, fragment: str) -> None:
    problems = retry.problems()
    assert len(problems) == 1
    assert fragment in problems[0]


def test_every_bad_retry_value_is_reported_at_once() -> None:
    problems = Retry(max_attempts=0, backoff="never", base=-1, max_backoff=-1).problems()  # type: ignore[arg-type]
    assert [p.split(" ")[0] for p in problems] == ["max_attempts", "backoff", "base", "max_backoff"]
