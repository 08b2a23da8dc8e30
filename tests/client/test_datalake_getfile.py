"""getFile's shapes and targets: the same shape for the same input ('bytes' and 'file'
alike: a URI string gives one value, a list gives a list), and a target that names a
directory (a trailing slash, an existing directory, several files) is one, made if
missing. Against a real `pyconnector serve` process."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pyconnector


@pytest.fixture
def dls(server: Any, tmp_path: Path) -> Iterator[Any]:
    """A DLS user's connector with two files uploaded: a.bin and b.bin under dir/."""
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    conn = pyconnector.connectors(api_key=server.new_key(tenant), URL=server.url,
                                  dls_key=server.dls_key(tenant, "ana"))
    d = conn.Datalake()
    d.uris = []
    for name, data in (("a.bin", b"first file"), ("b.bin", b"second")):
        src = tmp_path / name
        src.write_bytes(data)
        assert d.uploadFile(src, directory="dir")["code"] == 201
        d.uris.append(f"{tenant}/ana/dir/{name}")
    yield d
    conn.close()


def test_a_target_ending_with_a_slash_is_a_directory_made_if_missing(
        dls: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    saved = dls.getFile(dls.uris[0], responseType="file", target="downloads/")
    assert saved == Path("downloads") / "a.bin"
    assert (tmp_path / "downloads").is_dir()
    assert (tmp_path / "downloads" / "a.bin").read_bytes() == b"first file"
    # Nested and with os.sep too; an os.PathLike that is an existing directory as well.
    deep = dls.getFile(dls.uris[1], "file", target=f"x{os.sep}y{os.sep}")
    assert deep.read_bytes() == b"second" and deep == Path("x", "y", "b.bin")
    again = dls.getFile(dls.uris[1], "file", target=tmp_path / "downloads")
    assert again == tmp_path / "downloads" / "b.bin" and again.read_bytes() == b"second"


def test_a_target_without_a_slash_is_the_file_its_directory_made(dls: Any,
                                                                 tmp_path: Path) -> None:
    saved = dls.getFile(dls.uris[0], "file", target=tmp_path / "new" / "copy.dat")
    assert saved == tmp_path / "new" / "copy.dat" and saved.read_bytes() == b"first file"


def test_several_files_go_into_the_target_directory(dls: Any, tmp_path: Path) -> None:
    saved = dls.getFile(dls.uris, "file", target=tmp_path / "many")
    assert saved == [tmp_path / "many" / "a.bin", tmp_path / "many" / "b.bin"]
    assert [p.read_bytes() for p in saved] == [b"first file", b"second"]


def test_a_target_that_cannot_be_made_is_a_pyconnector_error(dls: Any, tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("in the way")
    with pytest.raises(pyconnector.PyConnectorError, match="target: cannot make directory"):
        dls.getFile(dls.uris[0], "file", target=f"{blocker}/sub/")


@pytest.mark.parametrize("kind", ["bytes", "file"])
def test_the_same_input_gives_the_same_shape_for_bytes_and_file(
        dls: Any, tmp_path: Path, kind: str) -> None:
    def get(uris: Any) -> Any:
        return dls.getFile(uris, kind, target=f"{tmp_path}/{kind}/")

    def content(x: Any) -> bytes:
        return x if isinstance(x, bytes) else Path(x).read_bytes()

    one = get(dls.uris[0])
    assert not isinstance(one, list) and content(one) == b"first file"
    listed = get([dls.uris[0]])
    assert isinstance(listed, list) and [content(x) for x in listed] == [b"first file"]
    both = get(tuple(dls.uris))
    assert isinstance(both, list) and [content(x) for x in both] == [b"first file", b"second"]
    assert isinstance(get(iter(dls.uris)), list)  # any iterable of URIs: a list
