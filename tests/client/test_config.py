"""Connector configuration: keywords, INI files (with or without a section), environment."""

from __future__ import annotations

from pathlib import Path

import pytest

import pyconnector
from pyconnector.config import load


def test_keywords_beat_file_beat_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PYCONNECTOR_URL", "http://env:1")
    monkeypatch.setenv("PYCONNECTOR_API_KEY", "envkey")
    monkeypatch.setenv("PYCONNECTOR_TIMEOUT", "7")
    conf = tmp_path / "c.conf"
    conf.write_text("[pyconnector]\nURL = http://file:2/\napi_key = filekey ; comment\n")
    assert load().url == "http://env:1"
    c = load(conf)
    assert (c.url, c.api_key, c.timeout) == ("http://file:2", "filekey", 7.0)
    assert load(conf, api_key="kw").api_key == "kw"


def test_tcup_style_file_without_section_and_aliases(tmp_path: Path, monkeypatch) -> None:
    for var in ("PYCONNECTOR_URL", "PYCONNECTOR_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    conf = tmp_path / "ConfigFile.conf"
    conf.write_text("URL=https://in.example.com\nx-api-key=abc\nsymmetric_key=s3cret\n"
                    "verify=false\nretries=0\n")
    c = load(conf)
    assert (c.url, c.api_key, c.jwt_key, c.verify, c.retries) == (
        "https://in.example.com", "abc", "s3cret", False, 0)
    assert "abc" not in repr(c) and "s3cret" not in repr(c)


def test_missing_url_or_key_is_a_clear_config_error(tmp_path: Path, monkeypatch) -> None:
    for var in ("PYCONNECTOR_URL", "PYCONNECTOR_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(pyconnector.ConfigError, match="missing URL and api_key"):
        pyconnector.connectors()
    with pytest.raises(pyconnector.ConfigError, match="cannot read config file"):
        pyconnector.connectors(str(tmp_path / "nope.conf"))
    bad = tmp_path / "bad.conf"
    bad.write_text("[pyconnector\nURL=x\n")
    with pytest.raises(pyconnector.ConfigError, match="not valid INI"):
        pyconnector.connectors(str(bad))
    with pytest.raises(pyconnector.ConfigError, match="numbers"):
        pyconnector.connectors(api_key="k", URL="http://x", timeout="soon")  # type: ignore[arg-type]
