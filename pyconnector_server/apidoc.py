"""docs/api.md: the HTTP API reference, generated from the OpenAPI document (`make docs`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .app import create_app
from .settings import Settings


def markdown(spec: dict[str, Any]) -> str:
    out = [f"# HTTP API reference — {spec['info']['title']} {spec['info']['version']}", "",
           "Generated from the platform's OpenAPI document (`/openapi.json`) by `make docs`;",
           "a test fails if it drifts. Every route but `/health` needs `x-api-key`.", ""]
    by_tag: dict[str, list[str]] = {}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            tag = (op.get("tags") or ["other"])[0]
            params = ", ".join(
                f"`{p['name']}`" for p in op.get("parameters", [])
                if p["in"] in ("query", "path"))
            line = f"| `{method.upper()} {path}` | {op.get('summary', '')} | {params} |"
            by_tag.setdefault(tag, []).append(line)
    for tag, lines in by_tag.items():
        out += [f"## {tag}", "", "| Route | What | Parameters |", "|---|---|---|", *lines, ""]
    return "\n".join(out)


def generate() -> str:
    return markdown(create_app(Settings.load({}, environ={})).openapi())


if __name__ == "__main__":
    Path(sys.argv[1] if len(sys.argv) > 1 else "docs/api.md").write_text(generate(),
                                                                          encoding="utf-8")
