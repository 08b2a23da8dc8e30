"""What clients send the Task Service: projects, tasks, schedules, copies and links.
Typed like every body (:mod:`pyconnector_server.bodies`); schedule values are checked by
:mod:`.schedule`, which gives the same words in a body and a connector's error."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field, WithJsonSchema

from ..bodies import Model, rule
from ..errors import bad_request

NAME_MAX = 128
_NAME = re.compile(r"^[^\x00-\x1f\x7f/\\]{1,128}$")
MAX_LINKS = 32
MAX_ARGS = 64
ARG_MAX = 4096
#: the longest file name Linux takes (a longer one is an OSError where it is created)
FILE_NAME_BYTES = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def name(value: Any, field: str) -> str:
    """A project or task name: 1 to 128 characters, no control characters, '/' or '\\'."""
    if not isinstance(value, str):
        raise bad_request(f"{field}: expected a string, got {type(value).__name__}", field)
    if not _NAME.match(value) or value != value.strip():
        raise bad_request(f"{field}: {value[:40]!r} must be 1 to {NAME_MAX} characters, "
                          "without control characters, '/', '\\' or surrounding spaces",
                          field)
    return value


def utf8(value: str, field: str) -> str:
    """``value``, if it has a UTF-8 form: a JSON escape can make a lone surrogate
    (``"\\ud800"``), which no database, file name or answer can hold."""
    try:
        value.encode()
    except UnicodeEncodeError:
        raise bad_request(f"{field}: {value[:40]!r} is not valid Unicode (a lone "
                          "surrogate)", field) from None
    return value


def file_name(value: str, field: str) -> str:
    """A file name in a task's directory: one plain name (no directory, not '.' or '..'),
    without control characters, of at most 255 bytes in UTF-8."""
    if (not value or value in (".", "..") or "/" in value or "\\" in value
            or _CONTROL.search(value) or len(utf8(value, field).encode()) > FILE_NAME_BYTES):
        raise bad_request(f"{field}: {value[:40]!r} must be a plain file name (no directory, "
                          f"no control characters, at most {FILE_NAME_BYTES} bytes)", field)
    return value


Name = Annotated[str, rule(name), WithJsonSchema(
    {"type": "string", "minLength": 1, "maxLength": NAME_MAX})]
Field100 = Annotated[str | int | None, Field(None, description="a cron field (≤ 100 chars)")]


class ProjectIn(Model):
    """A new project (``P<id>`` is given to it)."""

    projectName: Name  # noqa: N815 - the connector's names


class TaskIn(Model):
    """A new task in a project (``T<id>`` is given to it). ``type``: a plain task runs
    when started; a delayed or recurrent one also on its schedule
    (``PUT …/schedule``)."""

    jobName: Name  # noqa: N815
    type: str = Field("task", pattern="^(task|delayed|recurrent)$")


class ScheduleIn(Model):
    """A delayed task's time, or a recurrent task's cron pattern (see docs/tasks.md)."""

    delayedTime: str | int | None = None  # noqa: N815
    timeZone: str | None = Field(None, max_length=64)  # noqa: N815
    cronPatternType: str | None = Field(None, max_length=16)  # noqa: N815
    minute: Field100 = None
    hour: Field100 = None
    day: Field100 = None
    month: Field100 = None
    weekday: Field100 = None
    cron: str | None = Field(None, max_length=100)
    recurrenceLimit: int | str | None = None  # noqa: N815


class CopyIn(Model):
    """Copy a task (its deploy and schedule, not its runs) to a project under a name."""

    projectId: str | None = Field(None, max_length=NAME_MAX)  # noqa: N815
    jobName: Name | None = None  # noqa: N815


class LinksIn(Model):
    """Files of other tasks' latest successful runs to place in this task's ``input/``
    at run time: ``fileNames[i]`` of task ``externalTaskIds[i]`` in project
    ``externalProjectIds[i]`` (a single project or file name applies to every task)."""

    externalProjectIds: list[str] = Field(max_length=MAX_LINKS)  # noqa: N815
    externalTaskIds: list[str] = Field(min_length=1, max_length=MAX_LINKS)  # noqa: N815
    fileNames: list[str] = Field(min_length=1, max_length=MAX_LINKS)  # noqa: N815
