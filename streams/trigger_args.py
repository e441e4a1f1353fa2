"""Build trigger definitions from command-line options."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas.cron import load_zone, resolve_local_time
from schemas.exceptions import InvalidTriggerError

_COMPARISON = re.compile(r"^\s*(?P<field>[A-Za-z_][A-Za-z0-9_.]*)\s*(?P<op>>=|<=|==|!=|=|>|<)\s*(?P<value>.+?)\s*$")
_EXISTS = re.compile(r"^\s*(?P<field>[A-Za-z_][A-Za-z0-9_.]*)\s+exists\s*$")
_OPS = {">=": "gte", "<=": "lte", "==": "eq", "=": "eq", "!=": "ne", ">": "gt", "<": "lt"}


def add_definition_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", help="name shown in the settings page and the history")
    parser.add_argument("--cron", help="five-field cron expression or @daily-style alias")
    parser.add_argument("--at", help="one-shot reminder time: ISO 8601 instant, or local time with --timezone")
    parser.add_argument("--timezone", help="IANA zone of --cron, --pattern or a local --at (default UTC)")
    parser.add_argument("--event", dest="event_type", help="event type to match, such as task.completed")
    parser.add_argument(
        "--pattern",
        help='pattern detector as JSON, such as \'{"detector": "high_productivity", "tasks": 5}\'',
    )
    parser.add_argument(
        "--where",
        action="append",
        default=None,
        help="condition on the event's data: 'milestone exists', 'priority>=3', 'status==done' (repeatable)",
    )
    parser.add_argument("--template", help="message template with {field} names")
    parser.add_argument("--session", dest="session_id", help="chat session id (default: Luna Updates)")
    parser.add_argument("--channels", help="comma-separated: chat, push, live (default chat)")
    parser.add_argument("--priority", choices=["low", "normal", "high", "critical"])
    parser.add_argument("--max-lateness-s", type=int, help="seconds a missed run may still fire after downtime")
    parser.add_argument("--catch-up", choices=["fire_once", "skip"], help="what a schedule does after downtime")


def parse_condition(text: str) -> dict[str, Any]:
    """Parse ``--where`` text into a condition; raises ``InvalidTriggerError``."""
    exists = _EXISTS.match(text)
    if exists:
        return {"field": exists.group("field"), "op": "exists"}
    match = _COMPARISON.match(text)
    if match is None:
        raise InvalidTriggerError(
            f"condition {text!r} is invalid; write 'field exists' or 'field>=3' (operators == != > >= < <=)"
        )
    raw = match.group("value")
    if raw[:1] in "<>=!":
        raise InvalidTriggerError(
            f"condition {text!r} is invalid: the value starts with {raw[:1]!r}; operators are == != > >= < <="
        )
    try:
        value: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = raw
    if isinstance(value, dict | list):
        raise InvalidTriggerError(f"condition {text!r}: the value must be a string, number or boolean")
    return {"field": match.group("field"), "op": _OPS[match.group("op")], "value": value}


def definition_from_args(
    args: argparse.Namespace, user_id: str, trigger_id: str, base: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Merge the options given onto ``base`` (the current definition, for updates)."""
    definition: dict[str, Any] = dict(base or {})
    definition["trigger_id"] = trigger_id
    definition["user_id"] = user_id
    for key in ("name", "template", "session_id", "priority"):
        value = getattr(args, key)
        if value is not None:
            definition[key] = value
    if args.channels is not None:
        definition["channels"] = [item.strip() for item in args.channels.split(",") if item.strip()]

    options = (("--cron", args.cron), ("--at", args.at), ("--event", args.event_type), ("--pattern", args.pattern))
    kinds = [flag for flag, value in options if value]
    if len(kinds) > 1:
        raise InvalidTriggerError(f"give only one of --cron, --at, --event and --pattern (got {', '.join(kinds)})")
    when: dict[str, Any] = dict(definition.get("when") or {})
    # An update that changes the schedule keeps the zone unless given a new one.
    zone = args.timezone or when.get("timezone") or "UTC"
    if args.cron is not None:
        when = {"kind": "cron", "cron": args.cron, "timezone": zone}
    elif args.at is not None:
        when = {"kind": "reminder", "at": args.at, "timezone": zone}
    elif args.event_type is not None:
        when = {"kind": "event", "event_type": args.event_type, "conditions": []}
    elif args.pattern is not None:
        try:
            detector = orjson.loads(args.pattern)
        except orjson.JSONDecodeError:
            detector = None
        if not isinstance(detector, dict):
            raise InvalidTriggerError('--pattern must be a JSON object, such as \'{"detector": "low_mood"}\'')
        when = {"kind": "pattern", "timezone": zone, "detector": detector}
    elif args.timezone is not None and when.get("kind") in ("cron", "reminder", "pattern"):
        when["timezone"] = args.timezone
    if args.where is not None:
        if when.get("kind") != "event":
            raise InvalidTriggerError("--where applies to event triggers only (use --event)")
        when["conditions"] = [parse_condition(text) for text in args.where]
    if args.max_lateness_s is not None:
        when["max_lateness_s"] = args.max_lateness_s
    if args.catch_up is not None:
        when["catch_up"] = args.catch_up
    if not when:
        raise InvalidTriggerError("a trigger needs one of --cron, --at, --event or --pattern")
    definition["when"] = when
    definition.setdefault("name", trigger_id)
    return definition


def check_reminder_in_future(definition: dict[str, Any], now: datetime) -> None:
    """Reject a reminder whose time has already passed."""
    when = definition.get("when") or {}
    if when.get("kind") != "reminder":
        return
    at = datetime.fromisoformat(str(when["at"]))
    instant = at.astimezone(UTC) if at.tzinfo else resolve_local_time(at, load_zone(when.get("timezone", "UTC")))
    if instant <= now:
        raise InvalidTriggerError(f"reminder time {instant:%Y-%m-%dT%H:%M:%SZ} is in the past")
