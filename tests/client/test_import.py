"""The connector stays light: importing it pulls in no server dependency."""

from __future__ import annotations

import subprocess
import sys


def test_import_pyconnector_does_not_import_the_server_stack() -> None:
    code = ("import sys, pyconnector; conn = pyconnector.connectors(api_key='k', URL='http://x');"
            "conn.SensorObservation();"
            "print(sorted(m for m in ('fastapi', 'sqlalchemy', 'starlette', 'uvicorn', "
            "'pyconnector_server', 'adbc_driver_manager', 'psycopg') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_the_platform_loads_the_column_engine_only_when_used() -> None:
    # pandas and pyarrow cost ~80 MB; a platform serving only files never needs them.
    code = ("import sys, pyconnector_server.app as a; a.create_app();"
            "print(sorted(m for m in ('pandas', 'pyarrow', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
