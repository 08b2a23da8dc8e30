"""The platform's clock: every stored time is epoch milliseconds, UTC."""

from __future__ import annotations

import time


def now_ms() -> int:
    """Now, in epoch milliseconds."""
    return int(time.time() * 1000)
