"""A worker process' log lines: short ones straight to its stderr, long ones through ``sys.stderr``.

dramatiq's CLI replaces a worker process' ``sys.stderr`` with a pipe its main process copies out;
the direct handler skips that copy for every line short enough to be written whole in one call.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import io, sys
    import structlog
    from worker.logging import configure_logging
    from worker.settings import Settings

    pipe = io.StringIO()
    sys.stderr = pipe  # what dramatiq's CLI does in a worker process
    configure_logging(Settings(log_format="json", log_level="INFO"), direct_stderr=True)
    log = structlog.get_logger("test")
    log.info("short_line", n=1)
    log.info("long_line", text="x" * 10_000)
    sys.__stdout__.write(pipe.getvalue())
""")


def test_short_lines_skip_the_pipe_and_long_ones_keep_it() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True)
    direct = [json.loads(line) for line in done.stderr.splitlines()]
    piped = [json.loads(line) for line in done.stdout.splitlines()]
    assert [entry["event"] for entry in direct] == ["short_line"]
    assert [entry["event"] for entry in piped] == ["long_line"]
    assert direct[0]["n"] == 1
