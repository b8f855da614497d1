"""The CreateParticipantToken budget: GCRA reservations, waits, refusals, IVS's quota."""

from __future__ import annotations

import pytest

from token_service.domain import Rate
from token_service.ivs.budget import (
    BudgetExhausted,
    BudgetRate,
    IvsCallBudget,
    MemorySlots,
    quota_warning,
    reserve,
)

SECOND = 1_000_000  # µs
RATE_45 = BudgetRate(count=45, period_seconds=1)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Sleeps:
    """Records the sleeps asked for instead of sleeping."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)


def test_first_reservation_is_immediate() -> None:
    answer, _ = reserve(0, 10 * SECOND, RATE_45, max_wait_us=0)

    assert answer.granted
    assert answer.wait_seconds == 0


def test_next_reservation_waits_one_interval() -> None:
    _, tat = reserve(0, 10 * SECOND, RATE_45, max_wait_us=SECOND)

    answer, _ = reserve(tat, 10 * SECOND, RATE_45, max_wait_us=SECOND)

    assert answer.granted
    assert answer.wait_seconds == pytest.approx(1 / 45, abs=1e-6)


def test_burst_slots_are_immediate() -> None:
    rate = BudgetRate(count=45, period_seconds=1, burst=3)
    tat, now = 0, 10 * SECOND
    waits = []
    for _ in range(4):
        answer, tat = reserve(tat, now, rate, max_wait_us=SECOND)
        waits.append(answer.wait_seconds)

    assert waits[:3] == [0, 0, 0]
    assert waits[3] > 0


def test_reservation_beyond_the_max_wait_is_refused() -> None:
    _, tat = reserve(0, 10 * SECOND, RATE_45, max_wait_us=0)

    answer, _ = reserve(tat, 10 * SECOND, RATE_45, max_wait_us=0)

    assert not answer.granted


def test_refusal_takes_no_slot() -> None:
    _, tat = reserve(0, 10 * SECOND, RATE_45, max_wait_us=0)

    _, after = reserve(tat, 10 * SECOND, RATE_45, max_wait_us=0)

    assert after == tat


def test_refusal_says_when_a_slot_is_within_the_wait_again() -> None:
    rate = BudgetRate(count=1, period_seconds=10)
    _, tat = reserve(0, 10 * SECOND, rate, max_wait_us=0)

    answer, _ = reserve(tat, 10 * SECOND, rate, max_wait_us=2 * SECOND)

    assert answer.retry_after == pytest.approx(8.0)


def test_budget_rate_defaults_to_a_burst_of_one() -> None:
    assert BudgetRate.of(Rate.parse("45/second")).burst == 1


def test_budget_rate_keeps_a_configured_burst() -> None:
    assert BudgetRate.of(Rate.parse("40/second;burst=5")).burst == 5


def test_default_rate_fits_the_ivs_quota() -> None:
    assert quota_warning(BudgetRate.of(Rate.parse("45/second"))) is None


def test_rate_plus_burst_over_the_quota_is_warned_about() -> None:
    warning = quota_warning(BudgetRate.of(Rate.parse("45/second;burst=10")))

    assert warning is not None
    assert "TOKEN_SERVICE_IVS_TOKEN_RATE" in warning


def test_share_of_replicas_divides_the_rate() -> None:
    share = RATE_45.shared_by(3)

    assert share.interval_us == pytest.approx(3 * RATE_45.interval_us, abs=2)


def test_late_tolerance_leaves_half_the_headroom() -> None:
    # 50 - 1 - 45 = 4 intervals of headroom; half of it, 2 intervals of 1/45 s.
    assert RATE_45.late_tolerance() == pytest.approx(2 / 45, rel=1e-3)


def test_late_tolerance_has_a_floor_without_headroom() -> None:
    assert BudgetRate(count=50, period_seconds=1).late_tolerance() == pytest.approx(0.005)


async def test_acquire_sleeps_until_the_slot() -> None:
    clock, sleeps = FakeClock(), Sleeps()
    budget = IvsCallBudget(
        MemorySlots(RATE_45, clock), max_wait_seconds=1.0, sleep=sleeps, clock=clock
    )

    await budget.acquire()
    await budget.acquire()

    assert sleeps.asked == [pytest.approx(1 / 45, abs=1e-6)]


async def test_acquire_returns_when_the_call_must_have_left() -> None:
    clock = FakeClock()
    budget = IvsCallBudget(
        MemorySlots(RATE_45, clock), max_wait_seconds=1.0, sleep=Sleeps(), clock=clock
    )

    send_by = await budget.acquire()

    assert send_by == pytest.approx(clock.now + RATE_45.late_tolerance())


async def test_acquire_beyond_the_max_wait_raises_budget_exhausted() -> None:
    clock = FakeClock()
    budget = IvsCallBudget(
        MemorySlots(BudgetRate(1, 60), clock), max_wait_seconds=0.25, sleep=Sleeps(), clock=clock
    )
    await budget.acquire()

    with pytest.raises(BudgetExhausted) as refused:
        await budget.acquire()

    assert refused.value.retry_after == pytest.approx(59.75)


async def test_acquire_limit_shortens_the_max_wait() -> None:
    clock = FakeClock()
    budget = IvsCallBudget(
        MemorySlots(BudgetRate(10, 1), clock), max_wait_seconds=1.0, sleep=Sleeps(), clock=clock
    )
    await budget.acquire()

    with pytest.raises(BudgetExhausted):
        await budget.acquire(limit=0.05)


async def test_acquire_reports_each_decision() -> None:
    clock, seen = FakeClock(), []
    budget = IvsCallBudget(
        MemorySlots(BudgetRate(1, 1), clock),
        max_wait_seconds=1.5,
        sleep=Sleeps(),
        clock=clock,
        on_decision=lambda outcome, waited: seen.append(outcome),
    )

    await budget.acquire()
    await budget.acquire()
    with pytest.raises(BudgetExhausted):
        await budget.acquire()

    assert seen == ["immediate", "waited", "refused"]


def test_the_default_lookup_rate_fits_get_stage_quota() -> None:
    lookups = BudgetRate.of(Rate.parse("3/second"), quota=5)

    assert quota_warning(lookups, "TOKEN_SERVICE_IVS_LOOKUP_RATE", "GetStage") is None


def test_a_lookup_rate_over_get_stage_quota_is_warned_about_by_name() -> None:
    lookups = BudgetRate.of(Rate.parse("6/second"), quota=5)

    warning = quota_warning(lookups, "TOKEN_SERVICE_IVS_LOOKUP_RATE", "GetStage")

    assert warning is not None
    assert "TOKEN_SERVICE_IVS_LOOKUP_RATE" in warning
    assert "GetStage" in warning
    assert "5/s" in warning


def test_late_tolerance_counts_the_operations_own_quota() -> None:
    # GetStage: 5 - 1 - 3 = 1 interval of headroom; half of it, 1/6 s.
    assert BudgetRate.of(Rate.parse("3/second"), quota=5).late_tolerance() == pytest.approx(
        1 / 6, rel=1e-3
    )


def test_a_share_keeps_the_operations_quota() -> None:
    assert BudgetRate.of(Rate.parse("3/second"), quota=5).shared_by(2).quota == 5
