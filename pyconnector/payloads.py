"""Builders of the TCUP observation JSON, shared by SOS, message routing and MQTT."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from .errors import InputError
from .times import TimeLike, format_tcup, parse_time

ACCEPTED_TIMES = (
    "a datetime (no tzinfo means UTC); epoch milliseconds (1436000000000); "
    "ISO 8601 ('2015-07-03T13:10:00+05:30', '2015-07-03 07:40:00Z'; no zone means UTC); "
    "TCUP's 'dd-MMM-yyyy HH:mm:ss[.SSS][ zone]' ('03-JUL-2015 13:10:00 IST')")


def time_ms(value: TimeLike, field: str = "time") -> int:
    """``value`` as epoch milliseconds, or an :class:`~pyconnector.InputError` saying why
    not and listing the accepted forms."""
    try:
        return parse_time(value)
    except ValueError as exc:
        # parse_time's own hint is shorter than the list: the list replaces it.
        reason = str(exc).split(": use ")[0]
        raise InputError(f"{field}: {reason}. Accepted: {ACCEPTED_TIMES}") from None


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
        "starttime": format_tcup(time_ms(when)),
        "output": [{"name": k, "value": v} for k, v in outputs.items()],
    }]
    return {"version": "1.0.1", "observations": [item]}
