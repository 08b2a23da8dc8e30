"""The demo's plot: its time axis is UTC and says so (examples/demo.py)."""

from __future__ import annotations

import importlib
from pathlib import Path

import matplotlib
import pandas as pd
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_time_axis_says_utc_and_shows_utc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    demo = importlib.import_module("demo")
    # matplotlib set to another zone: the axis must still show the UTC clock.
    monkeypatch.setitem(matplotlib.rcParams, "timezone", "Asia/Kolkata")
    times = pd.date_range("2024-05-01T22:00:00Z", periods=121, freq="min")
    df = pd.DataFrame({"time": times, "temperature": range(121)})
    fig = demo.plot_temperature(df, tmp_path / "t.png")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "time (UTC)"
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels[0] == "01 May 22:00", labels  # in India it would be 02 May 03:30
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
