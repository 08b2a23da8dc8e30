"""Checks of request values that every service shares."""

from __future__ import annotations

from .errors import bad_request

# Counts, limits and offsets stay within a 32-bit signed integer, which every database
# takes as a LIMIT/OFFSET without overflowing.
MAX_COUNT = 2**31 - 1


def int_param(raw: str | None, field: str, default: int | None = None, lo: int = 0,
              hi: int | None = None) -> int | None:
    """An integer query parameter in ``[lo, hi]`` (``hi`` at most MAX_COUNT), or 400."""
    if raw is None or raw == "":
        return default
    try:
        n = int(raw)
    except ValueError:
        raise bad_request(f"{field}: expected an integer, got {raw!r}", field) from None
    top = MAX_COUNT if hi is None else min(hi, MAX_COUNT)
    if n < lo or n > top:
        if hi is not None:
            raise bad_request(f"{field}: must be between {lo} and {top}", field)
        raise bad_request(f"{field}: must be at least {lo}" if n < lo else
                          f"{field}: at most {top}", field)
    return n


def no_nul(value: str, field: str) -> str:
    """``value`` unchanged, or 400 if it holds a NUL character: PostgreSQL text cannot
    store one (SQLite can), so both stores refuse it up front, naming the field."""
    if "\x00" in value:
        raise bad_request(f"{field}: must not contain NUL characters", field)
    return value


def text_param(raw: str | None, field: str, max_len: int) -> str | None:
    """A free-text request value of at most ``max_len`` characters and no NUL, or 400.
    The bound keeps work a user can ask of the database (patterns, comparisons) small."""
    if raw is None:
        return None
    if len(raw) > max_len:
        raise bad_request(f"{field}: at most {max_len} characters (got {len(raw)})", field)
    return no_nul(raw, field)
