"""Webhook hooks, the commands that change them, and received webhook calls.

A hook is one user's endpoint for an external sender (GitHub, Stripe, any
Standard Webhooks sender or a plain HMAC sender). The gateway verifies each
call with the hook's secrets and publishes a ``WebhookReceived`` record; the
worker renders the hook's template over the payload.

Secrets are ``SecretStr`` so that ``repr`` and logs never show them. They are
written in clear only where a process must read them back: the commands and
outcomes topics, the worker's hooks table and the ``webhook_hooks`` read
model, so access to those must be restricted like access to the secrets.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from schemas.events import USER_ID_PATTERN
from schemas.exceptions import InvalidHookError, InvalidWebhookSecretError, TemplateError
from schemas.serialization import describe_validation_error
from schemas.template import parse_template
from schemas.triggers import Channel, Priority

HOOK_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{7,63}$"
HEADER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$"
#: Secrets a hook keeps at once: the current one and the ones still in their
#: rotation grace period.
MAX_SECRETS = 5
#: The Standard Webhooks prefix of a base64 secret, also used by Stripe.
WHSEC_PREFIX = "whsec_"
#: Decoded length of a Standard Webhooks secret, in bytes. The specification
#: requires 24 to 64 random bytes.
WHSEC_MIN_BYTES = 24
WHSEC_MAX_BYTES = 64
#: Length of a secret that is used as a plain string (GitHub, Stripe, HMAC).
PLAIN_SECRET_MIN_LENGTH = 16
PLAIN_SECRET_MAX_LENGTH = 256

SignatureScheme = Literal["standard-webhooks", "github", "stripe", "hmac-sha256", "none"]
#: Schemes whose hooks have at least one secret.
SIGNED_SCHEMES: tuple[SignatureScheme, ...] = ("standard-webhooks", "github", "stripe", "hmac-sha256")

_PRINTABLE_ASCII = re.compile(r"^[\x21-\x7e]+$")


def check_secret(scheme: SignatureScheme, secret: str) -> str:
    """Return ``secret`` when it has the form ``scheme`` needs.

    Raises ``InvalidWebhookSecretError`` naming the expected form. The
    message never contains the secret.
    """
    if scheme == "none":
        raise InvalidWebhookSecretError("scheme 'none' takes no secret; choose a signed scheme or drop the secret")
    if scheme == "standard-webhooks":
        decode_whsec(secret)
        return secret
    if not _PRINTABLE_ASCII.match(secret):
        raise InvalidWebhookSecretError(
            f"a {scheme} secret must be printable ASCII without spaces; check for a stray space or line break"
        )
    if secret.lower().startswith(("v1,", "sha256=", "t=")):
        raise InvalidWebhookSecretError(
            f"the {scheme} secret starts with a signature prefix; give the secret itself, not a signature header"
        )
    if scheme == "stripe" and not secret.startswith(WHSEC_PREFIX):
        raise InvalidWebhookSecretError("a stripe signing secret starts with 'whsec_'; copy it from the endpoint page")
    if not PLAIN_SECRET_MIN_LENGTH <= len(secret) <= PLAIN_SECRET_MAX_LENGTH:
        raise InvalidWebhookSecretError(
            f"a {scheme} secret must have {PLAIN_SECRET_MIN_LENGTH} to {PLAIN_SECRET_MAX_LENGTH} characters,"
            f" not {len(secret)}"
        )
    return secret


def decode_whsec(secret: str) -> bytes:
    """Decode a ``whsec_<base64>`` secret into its key bytes.

    Raises ``InvalidWebhookSecretError`` for any other form, such as a
    signature (``v1,...``) pasted in place of the secret.
    """
    if not secret.startswith(WHSEC_PREFIX):
        raise InvalidWebhookSecretError(
            "a standard-webhooks secret has the form 'whsec_<base64>'; a value such as 'v1,...' is a signature"
        )
    try:
        key = base64.b64decode(secret[len(WHSEC_PREFIX) :], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidWebhookSecretError("the part after 'whsec_' is not valid base64") from exc
    if not WHSEC_MIN_BYTES <= len(key) <= WHSEC_MAX_BYTES:
        raise InvalidWebhookSecretError(
            f"a standard-webhooks secret must decode to {WHSEC_MIN_BYTES} to {WHSEC_MAX_BYTES} bytes, not {len(key)}"
        )
    return key


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HookSecret(_Frozen):
    """One signing secret; ``expires_at`` is set once a newer secret replaces it."""

    secret: SecretStr
    created_at: AwareDatetime
    #: ``None`` while the secret is current; afterwards the end of its grace period.
    expires_at: AwareDatetime | None = None

    @field_serializer("secret", when_used="json")
    def _reveal(self, value: SecretStr) -> str:
        # XXX: JSON is how the secret travels to the worker and the gateway.
        return value.get_secret_value()

    def active_at(self, instant: datetime) -> bool:
        return self.expires_at is None or instant < self.expires_at


def _default_channels() -> list[Channel]:
    return ["chat"]


class HookDefinition(_Frozen):
    """One user's webhook endpoint as stored in the hooks table."""

    hook_id: str = Field(pattern=HOOK_ID_PATTERN)
    user_id: str = Field(pattern=USER_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    scheme: SignatureScheme
    secrets: list[HookSecret] = Field(default_factory=list, max_length=MAX_SECRETS)
    #: Header that carries the hex signature for the ``hmac-sha256`` scheme.
    signature_header: str = Field(default="X-Signature-256", pattern=HEADER_NAME_PATTERN)
    template: str
    session_id: str | None = Field(default=None, max_length=100)
    channels: list[Channel] = Field(default_factory=_default_channels, min_length=1)
    priority: Priority = "normal"
    enabled: bool = True

    @property
    def trigger_id(self) -> str:
        """The hook id, under the name occurrences and the history use."""
        return self.hook_id

    @field_validator("template")
    @classmethod
    def _check_template(cls, value: str) -> str:
        parse_template(value)
        return value

    @field_validator("channels")
    @classmethod
    def _check_channels(cls, value: list[Channel]) -> list[Channel]:
        if "chat" not in value:
            raise ValueError("channels must include 'chat': the chat message is the record")
        return sorted(set(value), key=value.index)

    @model_validator(mode="after")
    def _check_secrets(self) -> HookDefinition:
        if self.scheme == "none" and self.secrets:
            raise ValueError("scheme 'none' takes no secret")
        if self.scheme != "none" and not self.secrets:
            raise ValueError(f"scheme {self.scheme!r} needs a secret")
        for item in self.secrets:
            check_secret(self.scheme, item.secret.get_secret_value())
        return self

    def active_secrets(self, instant: datetime) -> list[str]:
        """Return the secrets that verify a call at ``instant``, newest first."""
        active = [item for item in self.secrets if item.active_at(instant)]
        return [item.secret.get_secret_value() for item in sorted(active, key=lambda s: s.created_at, reverse=True)]


HookAction = Literal["create", "rotate", "enable", "disable", "delete"]


class HookCommand(_Frozen):
    """A change to one hook, published to the commands topic.

    ``kind`` separates it from trigger commands on the same topic.
    ``create`` carries the whole definition; ``rotate`` carries the new
    secret and how long the older ones stay valid.
    """

    kind: Literal["hook"] = "hook"
    command_id: str = Field(min_length=1, max_length=200)
    user_id: str = Field(pattern=USER_ID_PATTERN)
    issued_at: AwareDatetime
    action: HookAction
    hook_id: str = Field(pattern=HOOK_ID_PATTERN)
    definition: HookDefinition | None = None
    new_secret: HookSecret | None = None
    grace_s: int | None = Field(default=None, ge=0, le=30 * 24 * 3600)
    schema_version: Literal[1] = 1

    @model_validator(mode="after")
    def _check_payload(self) -> HookCommand:
        if self.action == "create":
            if self.definition is None:
                raise ValueError("a create command needs a definition")
            if self.definition.hook_id != self.hook_id or self.definition.user_id != self.user_id:
                raise ValueError("the definition's hook_id and user_id must match the command's")
        elif self.definition is not None:
            raise ValueError(f"a {self.action} command takes no definition")
        if (self.action == "rotate") != (self.new_secret is not None):
            raise ValueError("a rotate command, and only a rotate command, carries new_secret")
        return self


class WebhookReceived(_Frozen):
    """A verified webhook call, published by the gateway to the webhooks topic."""

    user_id: str = Field(pattern=USER_ID_PATTERN)
    hook_id: str = Field(pattern=HOOK_ID_PATTERN)
    #: The deduplication key: the sender's id of this delivery (webhook-id,
    #: X-GitHub-Delivery, the Stripe event id). A sender that sends no id
    #: gets a digest of the body.
    delivery_id: str = Field(min_length=1, max_length=200)
    #: The sender's event name when it gives one (X-GitHub-Event, Stripe's
    #: ``type``, a Standard Webhooks payload's ``type``).
    event_type: str | None = Field(default=None, max_length=200)
    received_at: AwareDatetime
    payload: Any
    schema_version: Literal[1] = 1


def parse_hook(value: dict[str, Any]) -> HookDefinition:
    """Validate a hook definition; raises ``InvalidHookError`` saying what is wrong."""
    try:
        return HookDefinition.model_validate(value)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            cause = error.get("ctx", {}).get("error")
            if isinstance(cause, InvalidHookError):
                raise type(cause)(str(cause)) from exc
            if isinstance(cause, TemplateError):
                raise InvalidHookError(str(cause)) from exc
        raise InvalidHookError(f"invalid hook: {describe_validation_error(exc)}") from exc
