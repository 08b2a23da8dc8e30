"""The Data Lake answers, as the OpenAPI document describes them (routes return plain
values; these models only document them). Names with dashes are TCUP's."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Answer(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class DlsResponse(_Answer):
    """One item of a bulk answer (207): what it was about and what became of it."""

    key: str
    value: str
    code: int
    messages: list[str]


class Uploaded(_Answer):
    code: int = Field(description="201 created (or archived), 200 overwritten or appended")
    message: str
    uri: str
    size_bytes: int = Field(alias="size-bytes")
    sha256: str
    archived_to: str | None = Field(None, alias="archived-to")


class Updated(_Answer):
    code: int
    message: str
    uri: str | None = None
    user: str | None = None
    count: int | None = None


class MetaItem(_Answer):
    name: str
    value: str
    privacy: str = Field(description="public, private (yours alone) or system")


class FileDetails(_Answer):
    uri: str
    filename: str
    directory: str
    savepoint: str
    size_bytes: int = Field(alias="size-bytes")
    content_type: str | None = Field(alias="content-type")
    sha256: str | None
    comment: str | None
    created_on: str = Field(alias="created-on")
    created_by: str | None = Field(alias="created-by")
    updated_on: str = Field(alias="updated-on")
    updated_by: str | None = Field(alias="updated-by")
    permitted_action: str = Field(alias="permitted-action")
    metadata: list[MetaItem]


class CatalogPage(_Answer):
    page: int
    page_size: int = Field(alias="page-size")
    total_page: int = Field(alias="total-page")
    count: int
    result: list[FileDetails]


class DirectoryDetails(_Answer):
    name: str
    path: str
    parent: str
    file_count: int = Field(alias="file-count")
    size_bytes: int = Field(alias="size-bytes")
    subdir_count: int = Field(alias="subdir-count")
    created_on: str = Field(alias="created-on", description="its oldest file's upload")
    created_by: str = Field(alias="created-by", description="the area's owner")
    metadata: list[MetaItem] = Field(description="always empty: directories have none")


class ExploredFile(FileDetails):
    """A file in a directory listing: its catalog record, with TCUP's record fields."""

    name: str
    path: str = Field(description="[directory/][savepoint/]filename in the owner's area")
    parent: str = Field(description="its directory")
    file_count: int = Field(0, alias="file-count")
    subdir_count: int = Field(0, alias="subdir-count")


class Listing(_Answer):
    user: str
    path: str
    current_page: int = Field(alias="current-page")
    total_page: int = Field(alias="total-page")
    record_count: int = Field(alias="record-count")
    directories: list[DirectoryDetails]
    files: list[ExploredFile]


class Share(_Answer):
    owner: str
    user: str
    uri: str | None = Field(None, alias="file-uri")
    directory: str | None
    permissions: str
    created_on: str = Field(alias="created-on")


class Relation(_Answer):
    source: str
    relation: str
    target: str
    created_on: str = Field(alias="created-on")


class UserKey(_Answer):
    code: int
    user: str
    dls_key: str = Field(alias="dlsKey", description="Shown once: keep it")
    message: str


class UserDetails(_Answer):
    user: str
    created_on: str = Field(alias="created-on")
    file_count: int = Field(alias="file-count")
    size_bytes: int = Field(alias="size-bytes")


class Storage(_Answer):
    type: str = Field(description="LOCAL, S3 or MEMORY: where the blobs are")
    used_bytes: int = Field(alias="used-bytes")
    quota_bytes: int | None = Field(alias="quota-bytes", description="null: unlimited")
    file_count: int = Field(alias="file-count")


class StorageType(_Answer):
    """TCUP's ``GET /admin/storage/type``: where the Data Lake keeps its files."""

    type: str = Field(description="LOCAL (a directory of the server), S3 or MEMORY")
    value: str = Field(description="LOCAL: the directory's path; S3: s3://bucket/prefix "
                       "(no endpoint, no credentials); MEMORY: memory://")
