"""Settings: one table drives the CLI, the environment and docs/configuration.md."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from pyconnector_server.cli import build_parser
from pyconnector_server.settings import (
    DOC_END,
    DOC_START,
    SETTINGS,
    Settings,
    SettingsError,
    settings_markdown,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_configuration_doc_matches_the_settings_table() -> None:
    text = DOC.read_text(encoding="utf-8")
    generated = text.split(DOC_START, 1)[1].split(DOC_END, 1)[0].strip()
    assert generated == settings_markdown(), "docs/configuration.md drifted: run `make docs`"


def test_every_setting_is_a_serve_option() -> None:
    serve = build_parser()._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    options = {opt for action in serve._actions for opt in action.option_strings}
    for s in SETTINGS:
        assert f"--{s.name.replace('_', '-')}" in options


def test_arguments_beat_environment_beat_defaults() -> None:
    env = {"PYCONNECTOR_PORT": "9000", "PYCONNECTOR_HOST": "0.0.0.0"}
    s = Settings.load({"port": 9100}, environ=env)
    assert (s.port, s.host, s.log_level) == (9100, "0.0.0.0", "info")
    assert Settings.load({}, environ=env).port == 9000


def test_database_url_defaults_to_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    s = Settings.load({"data_dir": str(tmp_path)}, environ={})
    assert s.database_url == f"sqlite:///{tmp_path.resolve() / 'pyconnector.db'}"
    pg = Settings.load({"db": "postgresql://u@h:5432/d"}, environ={})
    assert pg.database_url == "postgresql+psycopg://u@h:5432/d"


def test_the_settings_table_is_the_settings_class() -> None:
    """One list: every field but ``extra`` is a row, with the field's own default and type."""
    by_name = {f.name: f for f in dataclasses.fields(Settings)}
    assert [s.name for s in SETTINGS] == [n for n in by_name if n != "extra"]
    for s in SETTINGS:
        assert s.default == by_name[s.name].default
        assert getattr(Settings(), s.name) == s.default
        assert isinstance(s.default, s.type) or (s.type is float and isinstance(s.default, int))
        assert s.help and s.env == f"PYCONNECTOR_{s.name.upper()}"
    assert Settings().extra == {} and Settings().extra is not Settings().extra


def test_values_from_text_are_converted() -> None:
    s = Settings.load({"max_body_bytes": "2048", "log_level": "debug"},
                      environ={"PYCONNECTOR_STATEMENT_TIMEOUT_SECONDS": "2.5",
                               "PYCONNECTOR_MAX_CONNECTIONS": "7"})
    assert (s.max_body_bytes, s.log_level) == (2048, "debug")
    assert (s.statement_timeout_seconds, s.max_connections) == (2.5, 7)


@pytest.mark.parametrize(("name", "raw", "message"), [
    ("port", "abc", "PYCONNECTOR_PORT: expected an integer from 0 to 65535, got 'abc'"),
    ("port", "70000", "PYCONNECTOR_PORT: expected an integer from 0 to 65535, got '70000'"),
    ("max_body_bytes", "1.5", "PYCONNECTOR_MAX_BODY_BYTES: expected an integer of at least 1, "
     "got '1.5'"),
    ("max_upload_bytes", "-1", "PYCONNECTOR_MAX_UPLOAD_BYTES: expected an integer of at least "
     "1, got '-1'"),
    ("sweep_interval_seconds", "-5", "PYCONNECTOR_SWEEP_INTERVAL_SECONDS: expected an integer "
     "of at least 0, got '-5'"),
    ("statement_timeout_seconds", "soon", "PYCONNECTOR_STATEMENT_TIMEOUT_SECONDS: expected a "
     "number of at least 0, got 'soon'"),
    ("statement_timeout_seconds", "nan", "PYCONNECTOR_STATEMENT_TIMEOUT_SECONDS: expected a "
     "number of at least 0, got 'nan'"),
    ("log_level", "loud", "PYCONNECTOR_LOG_LEVEL: expected one of debug, info, warning, error, "
     "got 'loud'"),
])
def test_a_bad_environment_value_names_the_variable(name: str, raw: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.load({}, environ={f"PYCONNECTOR_{name.upper()}": raw})
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(("name", "raw", "message"), [
    ("port", "abc", "--port: expected an integer from 0 to 65535, got 'abc'"),
    ("max_body_bytes", "1.5", "--max-body-bytes: expected an integer of at least 1, got '1.5'"),
    ("max_body_bytes", 1.5, "--max-body-bytes: expected an integer of at least 1, got 1.5"),
    ("max_connections", 0, "--max-connections: expected an integer of at least 1, got 0"),
    ("header_timeout_seconds", "-1", "--header-timeout-seconds: expected an integer of at "
     "least 1, got '-1'"),
    ("dls_quota_bytes", True, "--dls-quota-bytes: expected an integer of at least 0, got True"),
    ("log_level", "loud", "--log-level: expected one of debug, info, warning, error, "
     "got 'loud'"),
])
def test_a_bad_argument_names_the_option(name: str, raw: object, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        # The environment's good value does not rescue a bad argument: the argument wins.
        Settings.load({name: raw}, environ={f"PYCONNECTOR_{name.upper()}": "1"})
    assert str(caught.value) == message


def test_a_bad_environment_value_is_not_read_when_an_argument_is_given() -> None:
    assert Settings.load({"port": "9001"}, environ={"PYCONNECTOR_PORT": "abc"}).port == 9001


def test_limits_are_inclusive() -> None:
    s = Settings.load({"port": "0", "dls_quota_bytes": "0", "statement_timeout_seconds": "0"},
                      environ={"PYCONNECTOR_MAX_PAGE_SIZE": "1"})
    assert (s.port, s.dls_quota_bytes, s.statement_timeout_seconds, s.max_page_size) == (
        0, 0, 0.0, 1)
    assert Settings.load({"port": 65535}, environ={}).port == 65535


def test_serve_with_a_bad_option_exits_2_with_one_line(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "pyconnector_server.cli", "serve", "--port",
                          "abc", "--data-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert "--port" in lines[0] and "'abc'" in lines[0]
    assert not any(tmp_path.iterdir()), "nothing is created before the settings are valid"


def test_api_reference_matches_the_openapi_document() -> None:
    from pyconnector_server.apidoc import generate

    doc = DOC.parent / "api.md"
    assert doc.read_text(encoding="utf-8") == generate(), "docs/api.md drifted: run `make docs`"
