"""What clients send the Workflow Service: definitions and their recovery mode."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field, WithJsonSchema

from ..bodies import Model, rule
from ..errors import bad_request
from ..tasks.bodies import Name
from . import dag

VERSION_MAX = 64
_VERSION = re.compile(r"^[^\x00-\x1f\x7f/\\]{1,64}$")
#: no leading zeros: T01 would be T1 under another spelling (a self-edge T01 → T1 passed)
_NODE = re.compile(r"^(start|end|T[1-9][0-9]{0,8})$")


def version(value: Any, field: str) -> str:
    """A process version: 1 to 64 characters, no control characters, '/' or '\\'."""
    if not isinstance(value, str) or not _VERSION.match(value) or value != value.strip():
        raise bad_request(f"{field}: {str(value)[:40]!r} must be 1 to {VERSION_MAX} "
                          "characters, without control characters, '/', '\\' or "
                          "surrounding spaces", field)
    return value


def node(value: Any, field: str) -> str:
    """A task id (``T12``), or ``start``/``end``."""
    if not isinstance(value, str) or not _NODE.match(value):
        raise bad_request(f"{field}: {str(value)[:40]!r} is not a task id (T1, T2, …) nor "
                          "start or end", field)
    return value


Version = Annotated[str, rule(version), WithJsonSchema(
    {"type": "string", "minLength": 1, "maxLength": VERSION_MAX})]
Node = Annotated[str, rule(node), WithJsonSchema(
    {"type": "string", "pattern": _NODE.pattern})]


class Link(Model):
    """One edge: ``destination`` runs after ``source`` has succeeded."""

    source: Node
    destination: Node


class DefinitionIn(Model):
    """A process definition: a name, a version and the edges of its graph (task ids;
    ``start``/``end`` may be written and are implied)."""

    processName: Name  # noqa: N815 - the connector's names
    processVersion: Version  # noqa: N815
    links: list[Link] = Field(max_length=dag.MAX_EDGES)


class RecoveryIn(Model):
    """Whether ``recover()`` may re-run a failed or aborted instance's steps."""

    recoveryMode: bool  # noqa: N815
