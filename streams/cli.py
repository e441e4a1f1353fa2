"""The ``luna-triggers`` command: worker, gateway and operations.

Input errors print ``error [<code>]: <message>`` on stderr and exit with
status 2; nothing is published when a command is rejected.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import re
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from schemas.cron import load_zone, next_fire, parse_cron
from schemas.events import parse_event
from schemas.exceptions import InvalidArgumentsError, InvalidRecordError, InvalidTriggerError, LunaTriggersError
from schemas.serialization import loads_json
from schemas.triggers import TriggerCommand, parse_trigger
from streams.emit import EventProducer
from streams.hook_cli import add_hook_commands
from streams.logging_setup import configure_logging
from streams.settings import Settings, get_settings
from streams.trigger_args import add_definition_options, check_reminder_in_future, definition_from_args

EXIT_INVALID_INPUT = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        result: int = args.handler(args, settings)
        return result
    except LunaTriggersError as exc:
        print(f"error [{exc.code}]: {exc}", file=sys.stderr)
        return EXIT_INVALID_INPUT
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            # The reader (such as "| head") went away; that is not an error.
            sys.stderr.close()
            return 0
        print(f"error [file_error]: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_INVALID_INPUT


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="luna-triggers", description="Luna Triggers: proactive messages for Luna.")
    commands = parser.add_subparsers(dest="command", required=True)

    worker = commands.add_parser("worker", help="run the stream-processing worker")
    worker.set_defaults(handler=run_worker)

    gateway = commands.add_parser("gateway", help="run the HTTP gateway")
    gateway.set_defaults(handler=run_gateway)

    topics = commands.add_parser("topics", help="manage topics").add_subparsers(dest="action", required=True)
    topics.add_parser("create", help="create every topic that does not exist").set_defaults(handler=create_topics)

    emit = commands.add_parser("emit", help="produce a domain event to the activity topic")
    emit.add_argument("--file", type=Path, help="JSON Lines file of envelopes to produce")
    emit.add_argument("--user", dest="user_id")
    emit.add_argument("--type", dest="event_type", help="event type, such as task.completed")
    emit.add_argument("--data", default="{}", help="JSON object of the event's data")
    emit.add_argument("--id", dest="event_id", help="event id (default: a new UUID)")
    emit.add_argument("--source", default="cli", help="name of the producing service")
    emit.add_argument("--occurred-at", help="ISO 8601 instant (default: now)")
    emit.set_defaults(handler=emit_events)

    _add_trigger_commands(commands)
    add_hook_commands(commands)

    history = commands.add_parser("history", help="show a user's trigger history")
    history.add_argument("--user", dest="user_id", required=True)
    history.add_argument("--limit", type=_positive_int, default=20, help="how many entries (1 or more)")
    history.set_defaults(handler=show_history)

    messages = commands.add_parser("messages", help="show a user's proactive chat messages")
    messages.add_argument("--user", dest="user_id", required=True)
    messages.add_argument("--limit", type=_positive_int, default=20, help="how many messages (1 or more)")
    messages.set_defaults(handler=show_messages)

    dead = commands.add_parser("dead-letters", help="print the records in the dead-letter topic")
    dead.add_argument("--limit", type=_positive_int, default=100, help="how many dead letters (1 or more)")
    dead.set_defaults(handler=show_dead_letters)

    live = commands.add_parser("live", help="live updates").add_subparsers(dest="action", required=True)
    token = live.add_parser("token", help="print a signed token for the SSE stream and the user endpoints")
    token.add_argument("--user", dest="user_id", required=True)
    token.add_argument("--ttl-s", type=int, help="lifetime in seconds (default: LUNA_LIVE_TOKEN_TTL_S)")
    token.set_defaults(handler=mint_live_token)

    vapid = commands.add_parser("vapid", help="VAPID keys for Web Push").add_subparsers(dest="action", required=True)
    vapid.add_parser("generate", help="print a new key pair as environment variables").set_defaults(
        handler=generate_vapid_keys
    )

    schemas = commands.add_parser("schemas", help="JSON Schemas of the records").add_subparsers(
        dest="action", required=True
    )
    export = schemas.add_parser("export", help="write one JSON Schema file per record type")
    export.add_argument("directory", type=Path)
    export.set_defaults(handler=export_schemas)
    return parser


def _add_trigger_commands(commands: Any) -> None:
    triggers = commands.add_parser("triggers", help="create, change and list triggers").add_subparsers(
        dest="action", required=True
    )
    for action, help_text in (("create", "create a trigger"), ("update", "change some fields of a trigger")):
        sub = triggers.add_parser(action, help=help_text)
        sub.add_argument("--user", dest="user_id", required=action == "update")
        sub.add_argument("--id", dest="trigger_id", required=action == "update")
        sub.add_argument("--file", type=Path, help="JSON file with the whole definition (create only)")
        add_definition_options(sub)
        sub.set_defaults(handler=save_trigger, update=action == "update")
    for action in ("enable", "disable", "delete"):
        sub = triggers.add_parser(action, help=f"{action} a trigger")
        sub.add_argument("--user", dest="user_id", required=True)
        sub.add_argument("--id", dest="trigger_id", required=True)
        sub.set_defaults(handler=change_trigger, trigger_action=action)
    listing = triggers.add_parser("list", help="list a user's triggers")
    listing.add_argument("--user", dest="user_id", required=True)
    listing.set_defaults(handler=list_triggers)
    preview = triggers.add_parser("next", help="print the next fire times of a cron expression")
    preview.add_argument("--cron", required=True)
    preview.add_argument("--timezone", default="UTC")
    preview.add_argument("-n", type=int, default=5, help="how many fire times")
    preview.set_defaults(handler=preview_cron)


def run_worker(args: argparse.Namespace, settings: Settings) -> int:
    from prometheus_client import start_http_server

    from streams.admin import create_topics as create

    asyncio.run(create(settings))
    settings.worker_data_dir.mkdir(parents=True, exist_ok=True)
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, addr="127.0.0.1")
    # Importing the ticker registers its timer; the agents are found by
    # autodiscovery of the processors and sinks packages.
    import streams.liveness  # noqa: F401
    import streams.ticker  # noqa: F401
    from streams.app import app

    # faust enables its web server unless the command line disables it.
    # faust's worker spells two level names differently from logging.
    level = {"warning": "warn", "critical": "crit"}.get(settings.log_level.lower(), settings.log_level.lower())
    sys.argv = ["luna-triggers", "worker", "--without-web", "--loglevel", level]
    app.main()


def run_gateway(args: argparse.Namespace, settings: Settings) -> int:
    # The gateway is assembled where it serves, in the sinks package, so that
    # nothing in streams imports sinks at import time.
    gateway = importlib.import_module("sinks.gateway")
    gateway.serve(settings)
    return 0


def create_topics(args: argparse.Namespace, settings: Settings) -> int:
    from streams.admin import create_topics as create

    created = asyncio.run(create(settings))
    print(f"created {len(created)} topic(s) with prefix {settings.topic_prefix!r}")
    return 0


def emit_events(args: argparse.Namespace, settings: Settings) -> int:
    envelopes = []
    if args.file is not None:
        for number, line in enumerate(args.file.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    envelopes.append(parse_event(line))
                except InvalidRecordError as exc:
                    raise InvalidRecordError(exc.code, f"{args.file} line {number}: {exc.message}") from exc
    else:
        if not args.user_id or not args.event_type:
            raise InvalidArgumentsError("emit needs --file, or --user and --type")
        data = loads_json(args.data)
        envelopes.append(
            parse_event(
                {
                    "id": args.event_id or str(uuid.uuid4()),
                    "type": args.event_type,
                    "user_id": args.user_id,
                    "occurred_at": args.occurred_at or datetime.now(UTC).isoformat(),
                    "source": args.source,
                    "schema_version": 1,
                    "data": data,
                }
            )
        )

    async def produce() -> None:
        async with EventProducer.from_settings(settings) as producer:
            for envelope in envelopes:
                await producer.emit(envelope)

    asyncio.run(produce())
    print(f"emitted {len(envelopes)} event(s)")
    return 0


def save_trigger(args: argparse.Namespace, settings: Settings) -> int:
    base: dict[str, Any] | None = None
    if args.update:
        base = asyncio.run(_fetch_definition(settings, args.user_id, args.trigger_id))
        if base is None:
            raise InvalidTriggerError(f"trigger {args.trigger_id!r} of user {args.user_id!r} not found")
    if args.file is not None:
        raw = loads_json(args.file.read_bytes())
        if not isinstance(raw, dict):
            raise InvalidTriggerError(f"{args.file}: a trigger definition must be a JSON object")
        base = raw
    user_id = args.user_id or (base or {}).get("user_id")
    trigger_id = args.trigger_id or (base or {}).get("trigger_id") or f"t-{uuid.uuid4().hex[:12]}"
    if not user_id:
        raise InvalidTriggerError("a trigger needs --user (or user_id in --file)")
    if args.file is not None and not any(
        getattr(args, key) is not None for key in ("cron", "at", "event_type", "where", "template", "name")
    ):
        candidate = dict(base or {}, user_id=user_id, trigger_id=trigger_id)
    else:
        candidate = definition_from_args(args, user_id, trigger_id, base)
    definition = parse_trigger(candidate)
    if not args.update:
        check_reminder_in_future(candidate, datetime.now(UTC))
    command = TriggerCommand(
        command_id=str(uuid.uuid4()),
        user_id=definition.user_id,
        issued_at=datetime.now(UTC),
        action="upsert",
        trigger_id=definition.trigger_id,
        definition=definition,
    )
    asyncio.run(_send_command(settings, command))
    print(f"saved trigger {definition.trigger_id} for user {definition.user_id}")
    return 0


def change_trigger(args: argparse.Namespace, settings: Settings) -> int:
    command = TriggerCommand(
        command_id=str(uuid.uuid4()),
        user_id=args.user_id,
        issued_at=datetime.now(UTC),
        action=args.trigger_action,
        trigger_id=args.trigger_id,
    )
    asyncio.run(_send_command(settings, command))
    print(f"sent {args.trigger_action} for trigger {args.trigger_id} of user {args.user_id}")
    return 0


async def _send_command(settings: Settings, command: TriggerCommand) -> None:
    async with EventProducer.from_settings(settings) as producer:
        await producer.command(command)


async def _fetch_definition(settings: Settings, user_id: str, trigger_id: str) -> dict[str, Any] | None:
    rows = await _query(
        settings, "SELECT definition FROM triggers WHERE user_id = $1 AND trigger_id = $2", user_id, trigger_id
    )
    return orjson.loads(rows[0]["definition"]) if rows else None


async def _query(settings: Settings, sql: str, *params: Any) -> list[Any]:
    import asyncpg

    connection = await asyncpg.connect(
        settings.database_url.get_secret_value(), server_settings={"search_path": settings.database_schema}
    )
    try:
        return list(await connection.fetch(sql, *params))
    finally:
        await connection.close()


def list_triggers(args: argparse.Namespace, settings: Settings) -> int:
    rows = asyncio.run(
        _query(
            settings,
            "SELECT trigger_id, name, kind, enabled, definition FROM triggers WHERE user_id = $1 ORDER BY trigger_id",
            args.user_id,
        )
    )
    for row in rows:
        definition = orjson.loads(row["definition"])
        state = "enabled" if row["enabled"] else "disabled"
        print(
            f"{row['trigger_id']}\t{row['kind']}\t{state}\t{row['name']}\t{orjson.dumps(definition['when']).decode()}"
        )
    if not rows:
        print(f"no triggers for user {args.user_id}")
    return 0


def preview_cron(args: argparse.Namespace, settings: Settings) -> int:
    cron = parse_cron(args.cron)
    zone = load_zone(args.timezone)
    instant = datetime.now(UTC)
    for _ in range(max(1, min(args.n, 100))):
        found = next_fire(cron, zone, instant)
        if found is None:
            break
        instant = found
        print(f"{found.astimezone(zone).isoformat()}  ({found:%Y-%m-%dT%H:%M:%SZ})")
    return 0


def show_history(args: argparse.Namespace, settings: Settings) -> int:
    rows = asyncio.run(
        _query(
            settings,
            """SELECT recorded_at, stage, status, trigger_id, source, reason, error, occurrence_id
               FROM trigger_history WHERE user_id = $1 ORDER BY recorded_at DESC LIMIT $2""",
            args.user_id,
            args.limit,
        )
    )
    for row in rows:
        detail = row["error"] or row["reason"] or ""
        print(
            f"{row['recorded_at']:%Y-%m-%d %H:%M:%S}  {row['stage']:<8} {row['status']:<14} "
            f"{row['trigger_id'] or '-':<20} {detail}"
        )
    return 0


def show_messages(args: argparse.Namespace, settings: Settings) -> int:
    rows = asyncio.run(
        _query(
            settings,
            """SELECT m.created_at, s.title, m.content FROM chat_messages m
               JOIN chat_sessions s ON s.id = m.session_id
               WHERE m.user_id = $1 AND m.occurrence_id IS NOT NULL
               ORDER BY m.created_at DESC LIMIT $2""",
            args.user_id,
            args.limit,
        )
    )
    for row in reversed(rows):
        print(f"{row['created_at']:%Y-%m-%d %H:%M:%S}  [{row['title']}] {row['content']}")
    return 0


def show_dead_letters(args: argparse.Namespace, settings: Settings) -> int:
    from streams.deadletters import read_dead_letters

    for letter in asyncio.run(read_dead_letters(settings, args.limit)):
        print(orjson.dumps(letter).decode())
    return 0


def mint_live_token(args: argparse.Namespace, settings: Settings) -> int:
    from schemas.events import USER_ID_PATTERN
    from streams.tokens import mint_token

    if settings.live_token_key is None:
        raise InvalidArgumentsError("LUNA_LIVE_TOKEN_KEY is not set; the gateway could not verify a token")
    ttl_s = settings.live_token_ttl_s if args.ttl_s is None else args.ttl_s
    if not 1 <= ttl_s <= 24 * 3600:
        raise InvalidArgumentsError(f"--ttl-s must be between 1 and 86400 seconds, got {ttl_s}")
    if re.fullmatch(USER_ID_PATTERN, args.user_id) is None:
        raise InvalidArgumentsError(f"invalid user id {args.user_id!r}")
    print(mint_token(settings.live_token_key.get_secret_value().encode(), args.user_id, ttl_s))
    return 0


def generate_vapid_keys(args: argparse.Namespace, settings: Settings) -> int:
    """Print a new P-256 key pair: the raw private key and the public key that
    browsers take as ``applicationServerKey``, both base64url."""
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private_raw = key.private_numbers().private_value.to_bytes(32, "big")
    public_raw = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    print(f"LUNA_VAPID_PRIVATE_KEY={base64.urlsafe_b64encode(private_raw).rstrip(b'=').decode()}")
    print(f"LUNA_VAPID_PUBLIC_KEY={base64.urlsafe_b64encode(public_raw).rstrip(b'=').decode()}")
    return 0


def export_schemas(args: argparse.Namespace, settings: Settings) -> int:
    from schemas.export import export_json_schemas

    written = export_json_schemas(args.directory)
    print(f"wrote {len(written)} JSON Schema file(s) to {args.directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
