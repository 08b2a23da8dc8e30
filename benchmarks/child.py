"""Run one benchmark step in its own process: ``child.py MODULE FUNC JSON_KWARGS``.

Prints the step's result dict as JSON on the last line, with the process's own peak
RSS (``rss_mb``, from VmHWM) added.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import vmhwm_mb  # noqa: E402


def main() -> None:
    module, func, kwargs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    result = getattr(importlib.import_module(module), func)(**kwargs)
    result["rss_mb"] = vmhwm_mb()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
