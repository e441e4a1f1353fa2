"""Message templates with named fields, such as ``You finished {title}``.

A template reaches only the values of the fields it names. Dotted names
(``{goal.title}``) walk nested JSON objects by key; there is no attribute
access, no indexing, no format specification and no code, so a template
written by a user cannot read anything but the record it is rendered with.
Write ``{{`` and ``}}`` for literal braces.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from schemas.exceptions import TemplateError

MAX_TEMPLATE_LENGTH = 2000
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class Template:
    """A parsed template: literal text and field names, alternating."""

    source: str
    parts: tuple[tuple[str, str | None], ...]

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(name for _, name in self.parts if name is not None)

    def render(self, values: Mapping[str, Any]) -> str:
        """Substitute every field from ``values``.

        Raises ``TemplateError`` naming the first field that is missing.
        """
        out = []
        for literal, name in self.parts:
            out.append(literal)
            if name is not None:
                out.append(_format_value(_lookup(values, name)))
        return "".join(out)


def parse_template(source: str) -> Template:
    """Parse ``source``, raising ``TemplateError`` if it is not a valid template."""
    if not source.strip():
        raise TemplateError("template is empty")
    if len(source) > MAX_TEMPLATE_LENGTH:
        raise TemplateError(f"template is {len(source)} characters; the maximum is {MAX_TEMPLATE_LENGTH}")
    try:
        parsed = list(string.Formatter().parse(source))
    except ValueError as exc:
        raise TemplateError(f"template {source!r} is invalid: {exc}; write '{{{{' for a literal brace") from exc

    parts: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in parsed:
        if name is None:
            parts.append((literal, None))
            continue
        if conversion is not None or spec:
            raise TemplateError(f"template field {{{name}}} may not have a conversion or format spec")
        if not _FIELD_NAME.match(name) or "__" in name:
            raise TemplateError(
                f"template field {{{name}}} is not a field name; use letters, digits, '_' and '.' between names"
            )
        parts.append((literal, name))
    return Template(source=source, parts=tuple(parts))


def _lookup(values: Mapping[str, Any], name: str) -> Any:
    current: Any = values
    for key in name.split("."):
        if not isinstance(current, Mapping) or key not in current or current[key] is None:
            raise TemplateError(f"template field {{{name}}} is missing from the record")
        current = current[key]
    return current


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
