"""dramatiq's own command line, with our logging from its first line to its last.

dramatiq's CLI configures the stdlib logging with a format of its own unless told not to
(``--skip-logging``); ``billing worker`` runs it through this module, which configures the
redacting structlog chain first, so the supervisor's lines look like every other line.
"""

from __future__ import annotations

import sys

from dramatiq.cli import main as dramatiq_main

from worker.logging import configure_logging
from worker.settings import get_settings


def main() -> int:
    configure_logging(get_settings())
    return int(dramatiq_main() or 0)  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    sys.exit(main())
