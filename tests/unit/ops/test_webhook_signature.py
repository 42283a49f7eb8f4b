"""The webhook signature: the relay's header, the reference check, and the snippets of docs/webhooks.md.

The Python and Node.js snippets are taken from the page as they are and run against a header the
relay made: what a receiver copies works.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from worker.webhooks import signature, verify

ROOT = Path(__file__).resolve().parents[3]
SECRET = "whsec-test-0123456789abcdef"
BODY = json.dumps({"id": "e-1", "type": "invoice.created", "data": {"total": "70.00", "name": "Ünïcode"}},
                  ensure_ascii=False).encode()


def snippet(language: str) -> str:
    text = (ROOT / "docs" / "webhooks.md").read_text(encoding="utf-8")
    [code] = re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)
    return code


def test_the_header_is_stripes_scheme() -> None:
    header = signature(SECRET, 1764600000, BODY)
    expected = hmac.new(SECRET.encode(), b"1764600000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1764600000,v1={expected}"


def test_the_reference_check_refuses_tampering_staleness_and_other_secrets() -> None:
    now = time.time()
    header = signature(SECRET, int(now), BODY)
    assert verify(SECRET, header, BODY, now=now)
    assert not verify(SECRET, header, BODY + b" ", now=now)
    assert not verify("whsec-some-other-secret", header, BODY, now=now)
    assert not verify(SECRET, header, BODY, now=now + 301)
    assert not verify(SECRET, "v1=abc", BODY, now=now)


def test_the_python_snippet_verifies_the_relays_signature() -> None:
    namespace: dict[str, Any] = {}
    exec(compile(snippet("python"), "docs/webhooks.md", "exec"), namespace)
    header = signature(SECRET, int(time.time()), BODY)
    assert namespace["verify"](SECRET, header, BODY)
    assert not namespace["verify"](SECRET, header, BODY.replace(b"70.00", b"7.00"))
    assert not namespace["verify"](SECRET, signature(SECRET, int(time.time()) - 600, BODY), BODY)


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_the_node_snippet_verifies_the_relays_signature(tmp_path: Path) -> None:
    (tmp_path / "verify.js").write_text(snippet("js"), encoding="utf-8")
    (tmp_path / "body.bin").write_bytes(BODY)
    fresh, stale = signature(SECRET, int(time.time()), BODY), signature(SECRET, int(time.time()) - 600, BODY)
    script = f"""
const fs = require("node:fs");
const {{ verify }} = require("./verify.js");
const body = fs.readFileSync("body.bin");
console.log(JSON.stringify([
  verify({json.dumps(SECRET)}, {json.dumps(fresh)}, body),
  verify({json.dumps(SECRET)}, {json.dumps(fresh)}, Buffer.concat([body, Buffer.from(" ")])),
  verify({json.dumps(SECRET)}, {json.dumps(stale)}, body),
  verify("whsec-some-other-secret", {json.dumps(fresh)}, body),
]));
"""
    result = subprocess.run(["node", "-e", script], cwd=tmp_path, capture_output=True, text=True, timeout=30,
                            check=True)
    assert json.loads(result.stdout) == [True, False, False, False]
