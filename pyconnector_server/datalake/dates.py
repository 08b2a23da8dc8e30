"""The one rendering of a time in Data Lake answers.

TCUP's DLS writes ``created-on`` (and ``commented-on``) as ``dd-MMM-yyyy HH:mm:ss z``:
``03-JUL-2015 13:10:00 UTC``, the month an upper-case English abbreviation, the zone UTC,
no milliseconds. Every time in a DLS JSON answer goes through :func:`dls_time`.
"""

from __future__ import annotations

from pyconnector.times import to_datetime

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def dls_time(ms: int) -> str:
    """Epoch milliseconds as ``03-JUL-2015 13:10:00 UTC`` (milliseconds dropped)."""
    dt = to_datetime(ms)
    return f"{dt.day:02d}-{_MONTHS[dt.month - 1]}-{dt.year:04d} {dt:%H:%M:%S} UTC"
