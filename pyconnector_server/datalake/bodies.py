"""The Data Lake request bodies, typed; their fields use the checks of :mod:`.validate`."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

from ..bodies import Model, rule
from . import validate as v


def _one_or_many(value: Any) -> Any:
    """TCUP sends a single value where a list may be: ``"k=v"`` is ``["k=v"]``."""
    return [value] if isinstance(value, str) else value


Strings = Annotated[list[str], BeforeValidator(_one_or_many), WithJsonSchema(
    {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
     "description": "A string or a list of them"})]
UserName = Annotated[str, rule(v.user_name), WithJsonSchema(
    {"type": "string", "pattern": "^[A-Za-z0-9_.@-]{1,64}$"})]
Uri = Annotated[str, rule(v.uri_text),
                WithJsonSchema({"type": "string", "description":
                                "<tenant>/<user>/[<directory>/][<savepoint>/]<filename>"})]
Directory = Annotated[str, rule(v.directory), WithJsonSchema(
    {"type": "string", "description": "A directory of yours; \"\" is all your files"})]
Permissions = Annotated[str, rule(v.permissions), WithJsonSchema(
    {"type": "string", "pattern": "^[RWDrwd]{1,3}$",
     "description": "R (read), W (write), D (delete) in any combination; R is implied"})]
RelationName = Annotated[str, rule(v.relation_name), WithJsonSchema(
    {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_.:-]{0,63}$"})]
Comment = Annotated[str, rule(v.comment), WithJsonSchema({"type": "string",
                                                          "maxLength": 255})]


class MetadataUpdate(Model):
    """Metadata to set (``key=value``; ``private@key=value`` is yours alone) and keys to
    remove, and the file's comment."""

    metadata: Strings = Field(default_factory=list)
    remove: Strings = Field(default_factory=list)
    comment: Comment | None = None


class ShareIn(Model):
    """Share a file (``file-uri``) or a directory of yours (``directory``) with users."""

    users: list[UserName] = Field(min_length=1, max_length=v.MAX_SHARE_USERS)
    permissions: Permissions = "R"
    file_uri: Uri | None = Field(None, alias="file-uri")
    directory: Directory | None = None


class RelationIn(Model):
    """A named, directed link from one file to another (``derivedFrom``, …)."""

    source: Uri
    target: Uri
    relation: RelationName


class UserIn(Model):
    """A Data Lake user to register."""

    user: UserName
