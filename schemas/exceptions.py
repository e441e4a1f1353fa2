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


class InvalidTriggerError(LunaTriggersError, ValueError):
    """A trigger definition that is rejected before anything is stored."""

    code = "invalid_trigger"


class InvalidScheduleError(InvalidTriggerError):
    """A cron expression, time zone or reminder time that cannot be used."""

    code = "invalid_schedule"


class TemplateError(LunaTriggersError, ValueError):
    """A message template that cannot be parsed or rendered."""

    code = "template_error"


class InvalidHookError(LunaTriggersError, ValueError):
    """A webhook hook definition or command that is rejected before anything is stored."""

    code = "invalid_hook"


class InvalidWebhookSecretError(InvalidHookError):
    """A webhook secret in the wrong form for its signature scheme."""

    code = "invalid_webhook_secret"
