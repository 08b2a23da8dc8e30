"""Settings: one table drives the CLI, the environment and docs/configuration.md."""

from __future__ import annotations

from pathlib import Path

from pyconnector_server.cli import build_parser
from pyconnector_server.settings import DOC_END, DOC_START, SETTINGS, Settings, settings_markdown

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


def test_api_reference_matches_the_openapi_document() -> None:
    from pyconnector_server.apidoc import generate

    doc = DOC.parent / "api.md"
    assert doc.read_text(encoding="utf-8") == generate(), "docs/api.md drifted: run `make docs`"
