"""Templates reach only named fields of the record."""

from __future__ import annotations

import pytest

from schemas.exceptions import TemplateError
from schemas.template import parse_template


def test_renders_named_fields() -> None:
    template = parse_template('You received an email from {from}: "{subject}"')
    assert template.render({"from": "Ana", "subject": "Lunch?"}) == 'You received an email from Ana: "Lunch?"'


def test_dotted_name_walks_objects_by_key() -> None:
    assert parse_template("{goal.title}!").render({"goal": {"title": "Run 5k"}}) == "Run 5k!"


def test_literal_braces() -> None:
    assert parse_template("{{not a field}} {x}").render({"x": 1}) == "{not a field} 1"


def test_missing_field_is_clear_error() -> None:
    with pytest.raises(TemplateError, match=r"template field \{subject\} is missing"):
        parse_template("{subject}").render({"from": "Ana"})


@pytest.mark.parametrize(
    "source",
    ["{a.__class__}", "{0}", "{a[0]}", "{a!r}", "{a:>10}", "{", "}", "", "{}", "{a.__globals__}"],
)
def test_unsafe_or_invalid_template_rejected(source: str) -> None:
    with pytest.raises(TemplateError):
        parse_template(source)


def test_attribute_of_value_is_not_reached() -> None:
    # "upper" is an attribute of str, not a key, so it is missing.
    with pytest.raises(TemplateError, match="missing"):
        parse_template("{name.upper}").render({"name": "ana"})


def test_whole_number_float_renders_without_fraction() -> None:
    assert parse_template("{n} tasks").render({"n": 5.0}) == "5 tasks"
