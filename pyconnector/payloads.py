"""Builders of the TCUP observation JSON, shared by SOS, message routing and MQTT."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from .times import TimeLike, format_tcup, parse_time


def observation(sensor: str, outputs: dict[str, Any], feature: str | None = None,
                time: TimeLike | None = None) -> dict[str, Any]:
    """A one-record TCUP observation body: ``{"observations": [{sensor, feature, record}]}``.

    ``outputs`` maps observed property names to values; ``time`` defaults to now and may be
    anything the platform accepts (ISO 8601, epoch ms, TCUP format, a ``datetime``).
    """
    when = datetime.now(timezone.utc) if time is None else time
    item: dict[str, Any] = {"sensor": sensor}
    if feature is not None:
        item["feature"] = feature
    item["record"] = [{
        "starttime": format_tcup(parse_time(when)),
        "output": [{"name": k, "value": v} for k, v in outputs.items()],
    }]
    return {"version": "1.0.1", "observations": [item]}
