"""downloadObservation's progress bar knows its total: the rows the platform counted
beforehand (the CSV is streamed: it has no Content-Length)."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.e2e


def test_csv_download_bar_shows_its_total(server, tmp_path, capsys) -> None:
    with server.connector() as conn:
        sos = conn.SensorObservation()
        sos.createFeature("f")
        sos.createSensor("s", "f", outputs=["v"])
        sos.insertObservation([sos.data("s", {"v": k}, "f", time=1000 * k)["observations"][0]
                               for k in range(1, 8)])
        capsys.readouterr()
        out = sos.downloadObservation(tmp_path / "all.csv", sensor="s", progress=True)
        bar = capsys.readouterr().err
        assert len(out.read_text().splitlines()) == 8  # the header and 7 records
        assert re.search(r"all\.csv: 100%.*\b8/8\b.*row", bar), bar
        # A filter's records are known only once read: the bar counts bytes, no total.
        sos.downloadObservation(tmp_path / "some.csv", sensor="s", filter="v>3", progress=True)
        bar = capsys.readouterr().err
        assert re.search(r"some\.csv: \d+B \[", bar) and "%" not in bar, bar
