"""``luna-triggers hooks``: create, rotate, enable, disable, delete and list
webhook hooks.

Every change goes to the commands topic; ``list`` and the checks before a
change read the ``webhook_hooks`` read model. A generated secret is printed
once, at creation or rotation, and never again.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas.exceptions import InvalidHookError
from schemas.webhooks import (
    SIGNED_SCHEMES,
    WHSEC_PREFIX,
    HookCommand,
    HookDefinition,
    HookSecret,
    SignatureScheme,
    check_secret,
    parse_hook,
)
from streams.emit import EventProducer
from streams.settings import Settings

SCHEMES = ["standard-webhooks", "github", "stripe", "hmac-sha256", "none"]
#: Random bytes in a generated secret.
GENERATED_SECRET_BYTES = 32


def add_hook_commands(commands: Any) -> None:
    hooks = commands.add_parser("hooks", help="create, rotate and list webhook hooks").add_subparsers(
        dest="action", required=True
    )
    create = hooks.add_parser("create", help="create a hook and print its URL (and a new secret, once)")
    create.add_argument("--user", dest="user_id", required=True)
    create.add_argument("--id", dest="hook_id", help="hook id in the URL (default: a new random id)")
    create.add_argument("--name", required=True, help="name shown in the history")
    create.add_argument(
        "--scheme",
        choices=SCHEMES,
        default="standard-webhooks",
        help="signature scheme of the sender; 'none' accepts unsigned calls (default standard-webhooks)",
    )
    create.add_argument("--secret", help="the sender's signing secret (default: generate one and print it)")
    create.add_argument("--signature-header", help="header with the hex HMAC for scheme hmac-sha256")
    create.add_argument("--template", required=True, help="message template over the payload's {fields}")
    create.add_argument("--session", dest="session_id", help="chat session id (default: Luna Updates)")
    create.add_argument("--channels", help="comma-separated: chat, push, live (default chat)")
    create.add_argument("--priority", choices=["low", "normal", "high", "critical"], default="normal")
    create.set_defaults(handler=create_hook)

    rotate = hooks.add_parser("rotate", help="add a new secret; the older ones stay valid for the grace period")
    rotate.add_argument("--user", dest="user_id", required=True)
    rotate.add_argument("--id", dest="hook_id", required=True)
    rotate.add_argument("--secret", help="the new secret (default: generate one and print it)")
    rotate.add_argument("--grace-s", type=int, help="seconds the older secrets stay valid (default: the setting)")
    rotate.set_defaults(handler=rotate_hook)

    for action in ("enable", "disable", "delete"):
        sub = hooks.add_parser(action, help=f"{action} a hook")
        sub.add_argument("--user", dest="user_id", required=True)
        sub.add_argument("--id", dest="hook_id", required=True)
        sub.set_defaults(handler=change_hook, hook_action=action)

    listing = hooks.add_parser("list", help="list a user's hooks and URLs (never their secrets)")
    listing.add_argument("--user", dest="user_id", required=True)
    listing.set_defaults(handler=list_hooks)


def generate_secret(scheme: SignatureScheme) -> str:
    """Return a new random secret in the form ``scheme`` expects."""
    raw = secrets.token_bytes(GENERATED_SECRET_BYTES)
    if scheme in ("standard-webhooks", "stripe"):
        return WHSEC_PREFIX + base64.b64encode(raw).decode()
    return raw.hex()


def create_hook(args: argparse.Namespace, settings: Settings) -> int:
    scheme: SignatureScheme = args.scheme
    if scheme == "none" and args.secret is not None:
        raise InvalidHookError("scheme 'none' takes no --secret; choose a signed --scheme")
    hook_id = args.hook_id or f"hk_{secrets.token_urlsafe(18)}"
    secret = None
    if scheme in SIGNED_SCHEMES:
        secret = check_secret(scheme, args.secret) if args.secret is not None else generate_secret(scheme)
    now = datetime.now(UTC)
    candidate: dict[str, Any] = {
        "hook_id": hook_id,
        "user_id": args.user_id,
        "name": args.name,
        "scheme": scheme,
        "secrets": [{"secret": secret, "created_at": now.isoformat()}] if secret is not None else [],
        "template": args.template,
        "session_id": args.session_id,
        "priority": args.priority,
    }
    if args.signature_header is not None:
        candidate["signature_header"] = args.signature_header
    if args.channels is not None:
        candidate["channels"] = [item.strip() for item in args.channels.split(",") if item.strip()]
    hook = parse_hook(candidate)
    if asyncio.run(_fetch_hook(settings, hook_id)) is not None:
        raise InvalidHookError(f"hook id {hook_id!r} is taken; choose another --id")

    _send(settings, _command(hook.user_id, hook_id, "create", definition=hook, issued_at=now))
    print(f"created hook {hook_id} for user {hook.user_id}")
    print(f"url: {settings.webhook_url(hook_id)}")
    print(f"scheme: {scheme}")
    if secret is not None and args.secret is None:
        print(f"secret: {secret}")
        print("The secret is shown only now; store it in the sender's settings.")
    return 0


def rotate_hook(args: argparse.Namespace, settings: Settings) -> int:
    hook = _require_hook(settings, args.user_id, args.hook_id)
    if hook.scheme not in SIGNED_SCHEMES:
        raise InvalidHookError(f"hook {args.hook_id!r} uses scheme 'none' and has no secret to rotate")
    if args.grace_s is not None and args.grace_s < 0:
        raise InvalidHookError("--grace-s must be 0 or more seconds")
    secret = check_secret(hook.scheme, args.secret) if args.secret is not None else generate_secret(hook.scheme)
    now = datetime.now(UTC)
    new_secret = HookSecret.model_validate({"secret": secret, "created_at": now.isoformat()})
    grace_s = settings.webhook_rotation_grace_s if args.grace_s is None else args.grace_s
    _send(settings, _command(hook.user_id, hook.hook_id, "rotate", new_secret=new_secret, grace_s=grace_s))
    print(f"rotated the secret of hook {hook.hook_id}; older secrets stay valid for {grace_s} s")
    if args.secret is None:
        print(f"secret: {secret}")
        print("The secret is shown only now; store it in the sender's settings.")
    return 0


def change_hook(args: argparse.Namespace, settings: Settings) -> int:
    _require_hook(settings, args.user_id, args.hook_id)
    _send(settings, _command(args.user_id, args.hook_id, args.hook_action))
    print(f"sent {args.hook_action} for hook {args.hook_id} of user {args.user_id}")
    return 0


def list_hooks(args: argparse.Namespace, settings: Settings) -> int:
    rows = asyncio.run(
        _query(settings, "SELECT definition FROM webhook_hooks WHERE user_id = $1 ORDER BY hook_id", args.user_id)
    )
    now = datetime.now(UTC)
    for row in rows:
        hook = HookDefinition.model_validate(orjson.loads(row["definition"]))
        state = "enabled" if hook.enabled else "disabled"
        active = len(hook.active_secrets(now))
        print(f"{hook.hook_id}\t{hook.scheme}\t{state}\t{active} active secret(s)\t{hook.name}")
        print(f"\t{settings.webhook_url(hook.hook_id)}")
    if not rows:
        print(f"no hooks for user {args.user_id}")
    return 0


def _command(user_id: str, hook_id: str, action: str, **fields: Any) -> HookCommand:
    fields.setdefault("issued_at", datetime.now(UTC))
    return HookCommand.model_validate(
        {"command_id": str(uuid.uuid4()), "user_id": user_id, "hook_id": hook_id, "action": action, **fields}
    )


def _send(settings: Settings, command: HookCommand) -> None:
    async def produce() -> None:
        async with EventProducer.from_settings(settings) as producer:
            await producer.send(producer.topics.commands, command.user_id, command)

    asyncio.run(produce())


def _require_hook(settings: Settings, user_id: str, hook_id: str) -> HookDefinition:
    hook = asyncio.run(_fetch_hook(settings, hook_id))
    if hook is None or hook.user_id != user_id:
        raise InvalidHookError(f"hook {hook_id!r} of user {user_id!r} not found; see 'hooks list --user {user_id}'")
    return hook


async def _fetch_hook(settings: Settings, hook_id: str) -> HookDefinition | None:
    rows = await _query(settings, "SELECT definition FROM webhook_hooks WHERE hook_id = $1", hook_id)
    return HookDefinition.model_validate(orjson.loads(rows[0]["definition"])) if rows else None


async def _query(settings: Settings, sql: str, *params: Any) -> list[Any]:
    import asyncpg

    connection = await asyncpg.connect(
        settings.database_url.get_secret_value(), server_settings={"search_path": settings.database_schema}
    )
    try:
        return list(await connection.fetch(sql, *params))
    except asyncpg.UndefinedTableError:
        return []
    finally:
        await connection.close()
