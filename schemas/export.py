"""Write the JSON Schema of every record other services produce or read."""

from __future__ import annotations

from pathlib import Path

import orjson
from pydantic import BaseModel

from schemas.events import EVENT_DATA_MODELS, EventEnvelope
from schemas.records import DeadLetter, Delivery, Occurrence, Outcome, Tick
from schemas.triggers import TriggerCommand, TriggerDefinition

TOPIC_MODELS: dict[str, type[BaseModel]] = {
    "activity-event": EventEnvelope,
    "command": TriggerCommand,
    "trigger": TriggerDefinition,
    "tick": Tick,
    "occurrence": Occurrence,
    "delivery": Delivery,
    "outcome": Outcome,
    "dead-letter": DeadLetter,
}


def export_json_schemas(directory: Path) -> list[Path]:
    """Write one ``<name>.schema.json`` per record type; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    models: dict[str, type[BaseModel]] = dict(TOPIC_MODELS)
    for event_type, data_model in EVENT_DATA_MODELS.items():
        models[f"event-data.{event_type}"] = data_model
    for name, model in sorted(models.items()):
        schema = model.model_json_schema(mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"luna-triggers/{name}.schema.json"
        path = directory / f"{name}.schema.json"
        path.write_bytes(orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
        written.append(path)
    return written
