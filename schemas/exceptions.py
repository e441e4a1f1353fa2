"""Errors raised while parsing and validating records."""

from __future__ import annotations


class LunaTriggersError(Exception):
    """Root of every error this project raises on purpose."""

    #: A stable, machine-readable code, also used as the HTTP ``error`` field.
    code: str = "error"
    #: True when trying the same operation again later may succeed.
    retriable: bool = False


class InvalidRecordError(LunaTriggersError, ValueError):
    """A record that cannot be accepted; it goes to the dead-letter topic."""

    code = "invalid_record"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class InvalidArgumentsError(LunaTriggersError, ValueError):
    """Command-line options that are missing, out of range or inconsistent."""

    code = "invalid_arguments"


class InvalidTriggerError(LunaTriggersError, ValueError):
    """A trigger definition that is rejected before anything is stored."""

    code = "invalid_trigger"


class InvalidScheduleError(InvalidTriggerError):
    """A cron expression, time zone or reminder time that cannot be used."""

    code = "invalid_schedule"


class TemplateError(LunaTriggersError, ValueError):
    """A message template that cannot be parsed or rendered."""

    code = "template_error"


class AuthenticationError(LunaTriggersError):
    """A request without a valid token: missing, malformed, forged or expired."""

    code = "unauthenticated"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class InvalidSubscriptionError(LunaTriggersError, ValueError):
    """A push subscription rejected at registration, before anything is stored."""

    code = "invalid_subscription"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class PushSendError(LunaTriggersError):
    """One push attempt that the push service did not accept.

    ``retriable`` is true for 429, 5xx and network failures; ``retry_after_s``
    is the service's ``Retry-After`` in seconds, or ``None`` when it sent none.
    A gone subscription (404, 410) is not retriable.
    """

    code = "push_failed"

    def __init__(
        self,
        code: str,
        message: str,
        *,
        http_status: int | None = None,
        retriable: bool = False,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status
        self.retriable = retriable
        self.retry_after_s = retry_after_s


class InvalidHookError(LunaTriggersError, ValueError):
    """A webhook hook definition or command that is rejected before anything is stored."""

    code = "invalid_hook"


class InvalidWebhookSecretError(InvalidHookError):
    """A webhook secret in the wrong form for its signature scheme."""

    code = "invalid_webhook_secret"
