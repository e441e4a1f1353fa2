"""orjson encoding shared by every topic and HTTP body."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from schemas.exceptions import InvalidRecordError

ModelT = TypeVar("ModelT", bound=BaseModel)


def dumps(record: BaseModel) -> bytes:
    """Encode a model as compact JSON bytes (UTC instants end in ``Z``)."""
    return orjson.dumps(record.model_dump(mode="json"))


def dumps_obj(value: Any) -> bytes:
    return orjson.dumps(value)


def loads_json(raw: bytes | str) -> Any:
    """Decode JSON, raising ``InvalidRecordError('malformed_json')`` on failure."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRecordError("malformed_json", f"value is not valid JSON: {exc}") from exc


def parse(model: type[ModelT], raw: bytes | str | dict[str, Any], code: str) -> ModelT:
    """Decode and validate ``raw`` as ``model``.

    Raises ``InvalidRecordError`` with ``code`` when the value does not match
    the model, or with ``malformed_json`` when it is not JSON at all.
    """
    value = raw if isinstance(raw, dict) else loads_json(raw)
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise InvalidRecordError(code, describe_validation_error(exc)) from exc


def describe_validation_error(exc: ValidationError) -> str:
    """Summarise a pydantic error as ``field: problem; field: problem``."""
    parts = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(item) for item in error["loc"]) or "value"
        parts.append(f"{location}: {error['msg']}")
    return "; ".join(parts)
