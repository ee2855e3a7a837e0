"""Renders docs/events.md from the catalogue (a test checks the file is current)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from domain.catalogue import DATA_MODELS

HEADER = """# The event catalogue

Generated from `domain/catalogue.py` by `python scripts/events_doc.py`; do not edit by hand.
Every event is posted in the envelope described in the README. `*` marks a required field.
Stored topic of each type: `crm.<Type>` (e.g. `crm.CustomerMoved`). Platform-made types
(`MailingScheduled`, `MailingSuppressed`) cannot be posted.

An `Address` is {line*, city, district, province, postal_code, country (default "CN")}.
Money fields are decimal strings ("1234.50"), never JSON numbers; dates are "YYYY-MM-DD".
"""


def describe(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " or ".join(
            describe(s, defs) for s in schema["anyOf"] if s.get("type") != "null"
        )
    if "enum" in schema:
        return " \\| ".join(str(v) for v in schema["enum"])
    if "const" in schema:
        return str(schema["const"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {describe(schema.get('items', {}), defs)}"
    fmt = schema.get("format")
    if fmt:
        return f"{kind} ({fmt})"
    return str(kind)


def render() -> str:
    parts = [HEADER]
    for name, model in DATA_MODELS.items():
        schema = model.model_json_schema(mode="validation")
        defs = schema.get("$defs", {})
        required = set(schema.get("required", []))
        parts.append(f"\n## {name}\n\n| field | type |\n|---|---|")
        for field, spec in schema["properties"].items():
            star = "*" if field in required else ""
            parts.append(f"| {field}{star} | {describe(spec, defs)} |")
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    target = Path(__file__).parents[1] / "docs" / "events.md"
    target.write_text(render())
    sys.stdout.write(f"wrote {target}\n")
