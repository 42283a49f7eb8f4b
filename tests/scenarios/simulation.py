"""Running a scenario file through `billing simulate` in its own process, as the acceptance runner does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def simulate(path: Path) -> dict[str, Any]:
    """The document `billing simulate PATH` prints."""
    done = subprocess.run([sys.executable, "-m", "worker.cli", "simulate", str(path)], capture_output=True,
                          text=True, timeout=300, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result
