"""The schedule ticker: publishes a tick when a cron trigger or reminder is due.

It runs in every worker for the partitions that worker owns. The next fire
time of each schedule sits in a heap, so one pass costs O(k log n) for k due
schedules out of n, never a scan of all schedules. The heap is rebuilt from
the ``triggers`` and ``schedule_state`` tables after every rebalance, and
updated in place when the commands agent changes a trigger.

Each tick carries a deterministic occurrence id (user, trigger and scheduled
instant), so a tick published twice (say, before and after a crash) leads to
one chat message.

After downtime, runs older than the trigger's ``max_lateness_s`` are reported
in one ``missed`` tick. The latest run inside that window fires once under the
policy ``fire_once``, and is reported missed too under the policy ``skip``.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka.partitioner import murmur2
from aiokafka.structs import TopicPartition
from mode.types.signals import BaseSignalT

from schemas.cron import load_zone, next_fire, parse_cron, resolve_local_time
from schemas.records import Tick
from schemas.triggers import CronSchedule, Reminder, TriggerDefinition
from streams import metrics
from streams.app import (
    app,
    commands_topic,
    schedule_state_table,
    settings,
    ticks_topic,
    triggers_table,
    user_triggers,
)
from streams.publishing import send_record, utc_now

logger = logging.getLogger(__name__)

#: Missed runs counted one by one before the rest are skipped over; the
#: ``missed`` tick then reports a lower bound.
MAX_COUNTED_MISSED_RUNS = 1000
#: A ``skip`` schedule still fires when it is this late, which covers the
#: ticker's own interval and a short pause of the worker.
SKIP_POLICY_SLACK = timedelta(seconds=30)


def occurrence_id_for(user_id: str, trigger_id: str, scheduled_at: datetime) -> str:
    return f"schedule:{user_id}:{trigger_id}:{scheduled_at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def partition_for_user(user_id: str, partitions: int) -> int:
    """Return the partition that Kafka's default partitioner picks for this user's key."""
    return int(murmur2(user_id.encode()) & 0x7FFFFFFF) % partitions


@dataclass(frozen=True)
class _Plan:
    """The action of one due schedule in the current pass."""

    fire_at: datetime | None
    missed_count: int
    first_missed: datetime | None
    last_missed: datetime | None
    next_at: datetime | None


def next_run(definition: TriggerDefinition, after: datetime | None) -> datetime | None:
    """Return the first run of a schedule strictly after ``after``.

    ``after=None`` means "from the beginning", which matters for reminders
    only. Returns ``None`` when the schedule will not run again.
    """
    when = definition.when
    if isinstance(when, CronSchedule):
        start = after if after is not None else utc_now()
        return next_fire(parse_cron(when.cron), load_zone(when.timezone), start)
    if isinstance(when, Reminder):
        at = reminder_instant(when)
        return at if after is None or at > after else None
    return None


def reminder_instant(reminder: Reminder) -> datetime:
    if reminder.at.tzinfo is not None:
        return reminder.at.astimezone(UTC)
    return resolve_local_time(reminder.at, load_zone(reminder.timezone))


def plan_due(definition: TriggerDefinition, due_at: datetime, now: datetime) -> _Plan:
    """Decide what a schedule that came due at ``due_at`` does at ``now``."""
    when = definition.when
    assert isinstance(when, CronSchedule | Reminder)
    horizon = now - timedelta(seconds=when.max_lateness_s)

    missed = 0
    first_missed: datetime | None = None
    last_missed: datetime | None = None
    due: datetime | None = due_at
    while due is not None and due < horizon and missed < MAX_COUNTED_MISSED_RUNS:
        missed += 1
        first_missed = first_missed or due
        last_missed = due
        due = next_run(definition, due)
    if due is not None and due < horizon:
        # Too many to count: jump to the lateness window.
        due = next_run(definition, horizon - timedelta(microseconds=1))

    fire_at: datetime | None = None
    while due is not None and due <= now:
        if fire_at is not None:
            missed += 1
            first_missed = first_missed or fire_at
            last_missed = fire_at
        fire_at = due
        due = next_run(definition, due)

    skip_late = isinstance(when, CronSchedule) and when.catch_up == "skip"
    if fire_at is not None and skip_late and now - fire_at > SKIP_POLICY_SLACK:
        missed += 1
        first_missed = first_missed or fire_at
        last_missed = fire_at
        fire_at = None
    return _Plan(fire_at, missed, first_missed, last_missed, due)


class ScheduleTicker:
    """Heap of next fire times for the schedules of this worker's partitions."""

    def __init__(
        self,
        lookup: Callable[[str, str], dict[str, Any] | None],
        publish: Callable[[Tick], Awaitable[None]],
    ) -> None:
        """``lookup(user_id, trigger_id)`` returns a trigger's table entry or
        ``None``; ``publish`` produces a tick and returns once Kafka has it."""
        self._lookup = lookup
        self._publish_tick = publish
        self._heap: list[tuple[datetime, int, str, str, int]] = []
        self._versions: dict[tuple[str, str], int] = {}
        self._counter = itertools.count()
        self.assignment: frozenset[int] | None = None
        self.needs_rebuild = True

    def __len__(self) -> int:
        return len(self._versions)

    def upsert(self, user_id: str, trigger_id: str, entry: dict[str, Any], last_run: datetime | None) -> None:
        """(Re)schedule one trigger from its table entry; drop it when it will not run."""
        definition = TriggerDefinition.model_validate(entry["definition"])
        key = (user_id, trigger_id)
        if not definition.enabled or definition.when.kind == "event":
            self._versions.pop(key, None)
            return
        saved_at = datetime.fromisoformat(entry["saved_at"])
        after: datetime | None = last_run
        if isinstance(definition.when, CronSchedule):
            # A new or changed cron trigger starts from when it was saved.
            after = max(last_run, saved_at) if last_run is not None else saved_at
        next_at = next_run(definition, after)
        if next_at is None:
            self._versions.pop(key, None)
            return
        version = next(self._counter)
        self._versions[key] = version
        heapq.heappush(self._heap, (next_at, version, user_id, trigger_id, version))

    def remove(self, user_id: str, trigger_id: str) -> None:
        self._versions.pop((user_id, trigger_id), None)

    def rebuild(self, partitions: Iterable[int], users: Iterable[tuple[str, dict[str, Any], dict[str, str]]]) -> None:
        """Reload every schedule from ``users``: (user id, trigger entries,
        last runs) for each user on the given partitions."""
        owned = frozenset(partitions)
        self._heap.clear()
        self._versions.clear()
        for user_id, entries, state in users:
            for trigger_id, entry in entries.items():
                last = state.get(trigger_id)
                self.upsert(user_id, trigger_id, entry, datetime.fromisoformat(last) if last else None)
        self.assignment = owned
        self.needs_rebuild = False
        logger.info("schedule heap rebuilt: %d schedules on partitions %s", len(self), sorted(owned))

    def next_due(self) -> datetime | None:
        while self._heap:
            fire_at, _, user_id, trigger_id, version = self._heap[0]
            if self._versions.get((user_id, trigger_id)) == version:
                return fire_at
            heapq.heappop(self._heap)
        return None

    async def run_due(self, now: datetime) -> int:
        """Publish the ticks of every schedule due at ``now``; return how many fired.

        If Kafka does not take a tick, the schedule stays due and the next
        pass tries again.
        """
        fired = 0
        while (due_at := self.next_due()) is not None and due_at <= now:
            _, _, user_id, trigger_id, version = heapq.heappop(self._heap)
            entry = self._lookup(user_id, trigger_id)
            if entry is None:
                self._versions.pop((user_id, trigger_id), None)
                continue
            definition = TriggerDefinition.model_validate(entry["definition"])
            plan = plan_due(definition, due_at, now)
            try:
                await self._publish(definition, plan, now)
            except Exception:
                logger.exception(
                    "publishing a tick failed user_id=%s trigger_id=%s; will retry on the next pass",
                    user_id,
                    trigger_id,
                )
                heapq.heappush(self._heap, (due_at, version, user_id, trigger_id, version))
                break
            if plan.fire_at is not None:
                fired += 1
            if plan.next_at is None:
                self._versions.pop((user_id, trigger_id), None)
            else:
                heapq.heappush(self._heap, (plan.next_at, version, user_id, trigger_id, version))
        return fired

    async def _publish(self, definition: TriggerDefinition, plan: _Plan, now: datetime) -> None:
        user_id, trigger_id = definition.user_id, definition.trigger_id
        if plan.missed_count and plan.last_missed is not None:
            metrics.SCHEDULE_MISSED.inc(plan.missed_count)
            logger.warning(
                "schedule missed %d run(s) user_id=%s trigger_id=%s first=%s last=%s",
                plan.missed_count,
                user_id,
                trigger_id,
                plan.first_missed,
                plan.last_missed,
            )
            missed = Tick(
                kind="missed",
                occurrence_id=occurrence_id_for(user_id, trigger_id, plan.last_missed) + ":missed",
                user_id=user_id,
                trigger_id=trigger_id,
                scheduled_at=plan.last_missed,
                emitted_at=now,
                missed_count=plan.missed_count,
                first_missed_at=plan.first_missed,
            )
            await self._publish_tick(missed)
        if plan.fire_at is not None:
            tick = Tick(
                kind="fire",
                occurrence_id=occurrence_id_for(user_id, trigger_id, plan.fire_at),
                user_id=user_id,
                trigger_id=trigger_id,
                scheduled_at=plan.fire_at,
                emitted_at=now,
            )
            await self._publish_tick(tick)
            metrics.SCHEDULE_FIRES.inc()
            logger.debug("tick published user_id=%s trigger_id=%s at=%s", user_id, trigger_id, plan.fire_at)


async def _publish(tick: Tick) -> None:
    await send_record(ticks_topic, tick.user_id, tick)


def _lookup(user_id: str, trigger_id: str) -> dict[str, Any] | None:
    entry = user_triggers(user_id).get(trigger_id)
    return entry if isinstance(entry, dict) else None


def _owned_users(owned: frozenset[int]) -> Iterable[tuple[str, dict[str, Any], dict[str, str]]]:
    for user_id, entries in list(triggers_table.items()):
        if isinstance(entries, dict) and partition_for_user(user_id, settings.partitions) in owned:
            yield user_id, entries, schedule_state_table.get(user_id) or {}


ticker = ScheduleTicker(_lookup, _publish)


def owned_partitions() -> frozenset[int]:
    """Return the partitions of the commands topic that this worker owns now."""
    assignment: set[TopicPartition] = app.consumer.assignment()
    return frozenset(tp.partition for tp in assignment if tp.topic == commands_topic.get_topic_name())


@app.on_rebalance_complete.connect
async def _on_rebalance_complete(sender: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any) -> None:
    ticker.needs_rebuild = True


@app.timer(interval=settings.ticker_interval_s)  # type: ignore[untyped-decorator]
async def tick_schedules() -> None:
    """Publish due ticks; rebuild the heap first when the assignment changed."""
    if app.rebalancing or getattr(app, "in_recovery", False):
        return
    owned = owned_partitions()
    if ticker.needs_rebuild or owned != ticker.assignment:
        ticker.rebuild(owned, _owned_users(owned))
    await ticker.run_due(utc_now())
