"""The command line rejects bad input before publishing anything."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.stack import Deployment


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--cron", "60 * * * *"], "error [invalid_schedule]: minute field: 60 is out of range 0-59"),
        (
            ["--cron", "*/90 * * * *"],
            "error [invalid_schedule]: minute field: step 90 in '*/90' must be between 1 and 60",
        ),
        (["--cron", "0 0 30 2 *"], "never fires"),
        (["--cron", "@reboot"], "'@reboot' is not supported"),
        (["--cron", ""], "cron expression is empty"),
        (["--cron", "0 9 * * *", "--timezone", "America/Nowhere"], "unknown time zone 'America/Nowhere'"),
        (
            ["--at", "2020-01-01T09:00:00Z"],
            "error [invalid_trigger]: reminder time 2020-01-01T09:00:00Z is in the past",
        ),
        (["--event", "task.completed", "--where", "priority ~ 3"], "condition 'priority ~ 3' is invalid"),
        (["--event", "insight.created", "--where", "priority>high"], "condition 'gt' on 'priority' needs a number"),
        (["--event", "Task Completed"], "when.event.event_type: String should match pattern"),
        (["--cron", "0 9 * * *", "--event", "task.completed"], "give only one of --cron, --at, --event and --pattern"),
    ],
)
async def test_invalid_trigger_rejected_nothing_published(
    deployment: Deployment, options: list[str], message: str
) -> None:
    result = deployment.cli(
        "triggers", "create", "--user", "pat", "--id", "t", "--template", "Hi", *options, check=False
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert await deployment.read_topic(deployment.topics.commands) == []


async def test_valid_trigger_published_once(deployment: Deployment) -> None:
    deployment.cli("triggers", "create", "--user", "pat", "--id", "t", "--template", "Hi", "--cron", "0 9 * * MON-FRI")
    records = await deployment.read_topic(deployment.topics.commands)
    assert len(records) == 1
    command = orjson.loads(records[0].value)
    assert records[0].key == b"pat"
    assert command["action"] == "upsert"
    assert command["definition"]["when"] == {
        "kind": "cron",
        "cron": "0 9 * * MON-FRI",
        "timezone": "UTC",
        "max_lateness_s": 900,
        "catch_up": "fire_once",
    }


async def test_emit_rejects_invalid_event(deployment: Deployment) -> None:
    result = deployment.cli(
        "emit", "--user", "pat", "--type", "task.completed", "--data", '{"task_id": "1"}', check=False
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error [invalid_event_data]: data of task.completed: title: Field required"
    assert await deployment.read_topic(deployment.topics.activity) == []


async def test_emit_file_reports_line(deployment: Deployment, tmp_path: Path) -> None:
    lines = tmp_path / "events.jsonl"
    good = {
        "id": "e1",
        "type": "task.completed",
        "user_id": "pat",
        "occurred_at": "2026-12-04T10:00:00Z",
        "source": "tests",
        "schema_version": 1,
        "data": {"task_id": "1", "title": "ok"},
    }
    lines.write_text(orjson.dumps(good).decode() + "\n" + '{"id": "e2"}\n')
    result = deployment.cli("emit", "--file", str(lines), check=False)
    assert result.returncode == 2
    assert f"{lines} line 2:" in result.stderr
    assert await deployment.read_topic(deployment.topics.activity) == []


def test_cron_preview_prints_local_times(deployment: Deployment) -> None:
    result = deployment.cli("triggers", "next", "--cron", "30 8 * * *", "--timezone", "Asia/Tokyo", "-n", "3")
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3
    assert all(line.split("T")[1].startswith("08:30:00+09:00") for line in lines)


def test_schemas_export(deployment: Deployment, tmp_path: Path) -> None:
    result = deployment.cli("schemas", "export", str(tmp_path / "out"))
    assert result.stdout.startswith("wrote 14 JSON Schema file(s)")
    envelope = orjson.loads((tmp_path / "out" / "activity-event.schema.json").read_bytes())
    assert envelope["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(envelope["required"]) == {"id", "type", "user_id", "occurred_at", "source"}
    assert envelope["additionalProperties"] is False
    task = orjson.loads((tmp_path / "out" / "event-data.task.completed.schema.json").read_bytes())
    assert set(task["required"]) == {"task_id", "title"}


def test_update_keeps_time_zone() -> None:
    import argparse

    from streams.trigger_args import add_definition_options, definition_from_args

    parser = argparse.ArgumentParser()
    add_definition_options(parser)
    base = {
        "trigger_id": "t",
        "user_id": "pat",
        "name": "check-in",
        "template": "Hi",
        "when": {"kind": "cron", "cron": "0 9 * * *", "timezone": "America/New_York"},
    }
    updated = definition_from_args(parser.parse_args(["--cron", "0 8 * * *"]), "pat", "t", base)
    assert updated["when"] == {"kind": "cron", "cron": "0 8 * * *", "timezone": "America/New_York"}
    moved = definition_from_args(parser.parse_args(["--timezone", "Asia/Tokyo"]), "pat", "t", base)
    assert moved["when"]["timezone"] == "Asia/Tokyo"
    assert moved["when"]["cron"] == "0 9 * * *"


def test_missing_options_have_own_code(deployment: Deployment) -> None:
    result = deployment.cli("emit", "--type", "task.completed", check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == "error [invalid_arguments]: emit needs --file, or --user and --type"
