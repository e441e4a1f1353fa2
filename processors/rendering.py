"""Render a trigger's message from the fields of an event or schedule."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from schemas.events import EventEnvelope
from schemas.template import parse_template
from schemas.triggers import CronSchedule, Reminder, TriggerDefinition

#: Longest ``summary`` value kept in the history, in characters.
SUMMARY_VALUE_MAX = 200


def render(definition: TriggerDefinition, fields: dict[str, Any]) -> str:
    """Render the trigger's template; raises ``TemplateError`` on a missing field."""
    return render_template(definition.template, fields)


def render_template(template: str, fields: dict[str, Any]) -> str:
    """Render ``template``; raises ``TemplateError`` on a missing field."""
    return parse_template(template).render(fields)


def event_fields(definition: TriggerDefinition, event: EventEnvelope) -> dict[str, Any]:
    """Fields a template over an event can use: the event's data, then a few
    names of its own (``event_type``, ``occurred_at``, ``trigger_name``)."""
    fields = dict(event.data)
    fields.setdefault("event_type", event.type)
    fields.setdefault("occurred_at", event.occurred_at.isoformat())
    fields.setdefault("trigger_name", definition.name)
    return fields


def schedule_fields(definition: TriggerDefinition, scheduled_at: datetime) -> dict[str, Any]:
    """Fields of a schedule: its name and the scheduled time in the trigger's zone."""
    when = definition.when
    zone = ZoneInfo(when.timezone) if isinstance(when, CronSchedule | Reminder) else ZoneInfo("UTC")
    local = scheduled_at.astimezone(zone)
    return {
        "trigger_name": definition.name,
        "scheduled_at": scheduled_at.isoformat(),
        "local_time": local.strftime("%H:%M"),
        "local_date": local.strftime("%Y-%m-%d"),
        "weekday": local.strftime("%A"),
    }


def summarise(values: dict[str, Any]) -> dict[str, Any]:
    """Return a small copy of the scalar fields for the history, with long strings shortened."""
    summary: dict[str, Any] = {}
    for key, value in list(values.items())[:20]:
        if isinstance(value, str):
            summary[key] = value if len(value) <= SUMMARY_VALUE_MAX else value[: SUMMARY_VALUE_MAX - 1] + "…"
        elif isinstance(value, int | float | bool) or value is None:
            summary[key] = value
    return summary
