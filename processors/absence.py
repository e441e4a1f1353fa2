"""The absence detector: a per-partition timer, since no event announces silence.

For every user with a ``long_absence`` trigger, a heap contains the instant at
which the user's silence becomes long enough (last seen plus ``absence_s``).
One pass costs O(k log n) for the k users due, never a scan of every user.
The detection's window starts at the last-seen time, so it fires once per
absence, and again only after the user came back and left again.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from processors.detections import emit_detection
from processors.detectors import Detection, parse_iso
from processors.windows import Window
from schemas.patterns import LongAbsence, PatternMatch
from schemas.triggers import TriggerDefinition
from streams.app import app, pattern_state_table, settings, triggers_table, user_triggers
from streams.publishing import utc_now
from streams.ticker import owned_partitions, partition_for_user

logger = logging.getLogger(__name__)


class AbsenceWatch:
    """Deadlines of the absence triggers of this worker's users."""

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int, str, str]] = []
        #: (user, trigger) -> the version of its live heap entry.
        self._versions: dict[tuple[str, str], int] = {}
        self._last_seen: dict[tuple[str, str], datetime] = {}
        self._counter = itertools.count()
        self.assignment: frozenset[int] | None = None

    def __len__(self) -> int:
        return len(self._versions)

    def seen(self, user_id: str, last_seen: str | None) -> None:
        """Re-arm the user's absence triggers after activity at ``last_seen``."""
        if last_seen is None:
            return
        for definition in _absence_triggers(user_triggers(user_id)):
            self._arm(definition, parse_iso(last_seen))

    def refresh(self, user_id: str) -> None:
        """Re-read one user's triggers after a trigger command."""
        for key in [key for key in self._last_seen if key[0] == user_id]:
            self._versions.pop(key, None)
            del self._last_seen[key]
        self._arm_user(user_id, user_triggers(user_id))

    def rebuild(self, partitions: Iterable[int]) -> None:
        owned = frozenset(partitions)
        self._heap.clear()
        self._versions.clear()
        self._last_seen.clear()
        for user_id, entries in list(triggers_table.items()):
            if isinstance(entries, dict) and partition_for_user(user_id, settings.partitions) in owned:
                self._arm_user(user_id, entries)
        self.assignment = owned
        logger.info("absence heap rebuilt: %d triggers on partitions %s", len(self), sorted(owned))

    def _arm_user(self, user_id: str, entries: dict[str, Any]) -> None:
        state = pattern_state_table.get(user_id) or {}
        for definition in _absence_triggers(entries):
            saved_at = datetime.fromisoformat(entries[definition.trigger_id]["saved_at"])
            last = state.get("last_seen")
            # A user never seen since the trigger was saved is measured from then.
            baseline = max(parse_iso(last), saved_at) if last else saved_at
            self._arm(definition, baseline)

    def _arm(self, definition: TriggerDefinition, last_seen: datetime) -> None:
        assert isinstance(definition.when, PatternMatch) and isinstance(definition.when.detector, LongAbsence)
        key = (definition.user_id, definition.trigger_id)
        previous = self._last_seen.get(key)
        if previous is not None and previous >= last_seen:
            # Already armed (or already fired) for this stretch of silence.
            return
        version = next(self._counter)
        self._versions[key] = version
        self._last_seen[key] = last_seen
        deadline = last_seen + timedelta(seconds=definition.when.detector.absence_s)
        heapq.heappush(self._heap, (deadline, version, definition.user_id, definition.trigger_id))

    async def run_due(self, now: datetime) -> int:
        """Produce a detection for every absence that became long enough."""
        fired = 0
        while self._heap and self._heap[0][0] <= now:
            deadline, version, user_id, trigger_id = self._heap[0]
            key = (user_id, trigger_id)
            if self._versions.get(key) != version:
                heapq.heappop(self._heap)
                continue
            entry = user_triggers(user_id).get(trigger_id)
            definition = TriggerDefinition.model_validate(entry["definition"]) if entry else None
            if definition is None or not definition.enabled or definition.when.kind != "pattern":
                heapq.heappop(self._heap)
                self._versions.pop(key, None)
                continue
            last_seen = self._last_seen[key]
            detection = Detection(
                trigger_id,
                "long_absence",
                Window(last_seen, deadline),
                {"last_seen": last_seen.isoformat(), "silent_s": int((deadline - last_seen).total_seconds())},
                {
                    "last_seen": last_seen.isoformat(),
                    "days_absent": round((now - last_seen).total_seconds() / 86400, 1),
                },
            )
            try:
                await emit_detection(definition, None, detection)
            except Exception:
                logger.exception(
                    "absence detection not produced user_id=%s trigger_id=%s; will retry on the next pass",
                    user_id,
                    trigger_id,
                )
                break
            heapq.heappop(self._heap)
            # Disarmed until the user is seen again.
            self._versions.pop(key, None)
            fired += 1
        return fired


def _absence_triggers(entries: dict[str, Any]) -> list[TriggerDefinition]:
    found = []
    for entry in entries.values():
        definition = TriggerDefinition.model_validate(entry["definition"])
        when = definition.when
        if definition.enabled and isinstance(when, PatternMatch) and isinstance(when.detector, LongAbsence):
            found.append(definition)
    return found


absence_watch = AbsenceWatch()


@app.timer(interval=settings.absence_check_interval_s)  # type: ignore[untyped-decorator]
async def check_absences() -> None:
    """Produce due absence detections; rebuild the heap when the assignment changed."""
    if app.rebalancing or getattr(app, "in_recovery", False):
        return
    owned = owned_partitions()
    if owned != absence_watch.assignment:
        absence_watch.rebuild(owned)
    await absence_watch.run_due(utc_now())
