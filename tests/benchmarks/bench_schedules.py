"""Schedules: per-tick cost as the number of schedules grows, memory per
schedule and heap rebuild time, measured on the ticker itself."""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.records import Tick
from streams.ticker import ScheduleTicker
from tests.benchmarks.report import Figure, Section

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "America/Sao_Paulo"]
#: Schedules due in each measured minute, the same for every total.
DUE_PER_MINUTE = 100
MEASURED_MINUTES = 5
#: Schedules whose heap memory is measured (tracemalloc is slow).
MEMORY_SAMPLE = 20_000
START = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def build_entries(total: int) -> dict[str, dict[str, Any]]:
    """``total`` cron triggers over many users and zones.

    ``DUE_PER_MINUTE`` of them fire in each of the first ``MEASURED_MINUTES``
    UTC minutes after ``START``; the rest fire on one day of the year.
    """
    saved_at = (START - timedelta(hours=1)).isoformat()
    entries: dict[str, dict[str, Any]] = {}
    for number in range(total):
        user_id = f"user-{number}"
        due_minute = number // DUE_PER_MINUTE
        if due_minute < MEASURED_MINUTES:
            when = {"kind": "cron", "cron": f"{due_minute + 1} 10 * * *", "timezone": "UTC"}
        else:
            when = {
                "kind": "cron",
                "cron": f"{number % 60} {number % 24} 1 {1 + number % 11} *",
                "timezone": ZONES[number % len(ZONES)],
            }
        definition = {"trigger_id": "t", "user_id": user_id, "name": "n", "template": "x", "when": when}
        entries[user_id] = {"t": {"definition": definition, "saved_at": saved_at}}
    return entries


async def measure(total: int) -> dict[str, float]:
    entries = build_entries(total)
    published: list[Tick] = []

    async def publish(tick: Tick) -> None:
        published.append(tick)

    def make_ticker() -> ScheduleTicker:
        return ScheduleTicker(lambda user_id, trigger_id: entries[user_id].get(trigger_id), publish)

    # Memory on a sample, since tracemalloc slows every allocation down.
    sample = dict(list(entries.items())[:MEMORY_SAMPLE])
    gc.collect()
    tracemalloc.start()
    sample_ticker = make_ticker()
    sample_ticker.rebuild([0], ((user_id, value, {}) for user_id, value in sample.items()))
    heap_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del sample_ticker

    ticker = make_ticker()
    gc.collect()
    started = time.perf_counter()
    ticker.rebuild([0], ((user_id, value, {}) for user_id, value in entries.items()))
    rebuild_s = time.perf_counter() - started

    tick_costs = []
    for minute in range(1, MEASURED_MINUTES + 1):
        now = START + timedelta(minutes=minute, seconds=1)
        started = time.perf_counter()
        fired = await ticker.run_due(now)
        tick_costs.append(time.perf_counter() - started)
        assert fired == DUE_PER_MINUTE, f"{fired} fired at minute {minute}, expected {DUE_PER_MINUTE}"
    return {
        "rebuild_s": rebuild_s,
        "bytes_per_schedule": heap_bytes / len(sample),
        "tick_ms": statistics.median(tick_costs) * 1000,
    }


def run(totals: list[int]) -> Section:
    section = Section(
        "Schedules",
        f"`ScheduleTicker` in one process with no broker: {DUE_PER_MINUTE} cron schedules due per minute out of "
        f"{', '.join(f'{total:,}' for total in totals)} in {len(ZONES)} zones. Per-tick cost is the median of "
        f"{MEASURED_MINUTES} passes; memory is what tracemalloc sees the ticker allocate while it builds the heap "
        f"for the first {MEMORY_SAMPLE:,} schedules; the table entries themselves are not counted.",
    )
    results = {total: asyncio.run(measure(total)) for total in totals}
    smallest, largest = totals[0], totals[-1]
    for total in totals:
        section.figures.append(
            Figure(
                f"tick with {DUE_PER_MINUTE} due of {total:,}",
                results[total]["tick_ms"],
                "ms",
                baseline=results[smallest]["tick_ms"],
                goal="ratio about 1 (flat)",
                higher_is_better=False,
            )
        )
    for total in totals:
        section.figures.append(
            Figure(f"heap rebuild, {total:,} schedules", results[total]["rebuild_s"], "s", higher_is_better=False)
        )
        section.figures.append(
            Figure(
                f"ticker memory per schedule, {total:,}",
                results[total]["bytes_per_schedule"],
                "bytes",
                higher_is_better=False,
            )
        )
    section.notes.append(
        f"Tick cost ratio {largest:,} / {smallest:,}: "
        f"{results[largest]['tick_ms'] / results[smallest]['tick_ms']:.2f} (the heap makes it O(k log n))."
    )
    section.notes.append(
        f"Rebuild per schedule: {results[largest]['rebuild_s'] / largest * 1e6:.0f} µs at {largest:,}, "
        f"{results[smallest]['rebuild_s'] / smallest * 1e6:.0f} µs at {smallest:,}; most of it is validating the "
        "stored definition and computing the first fire time."
    )
    return section
