"""The Node.js producer (examples/producers/node) signs every test vector exactly as the worker does."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PRODUCER = ROOT / "examples" / "producers" / "node"
VECTORS = sorted((ROOT / "tests" / "vectors").glob("*.json"))

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node (Node.js 20) is not on PATH")


def node(*args: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("node")
    assert executable is not None
    return subprocess.run([executable, *args], cwd=PRODUCER, capture_output=True, text=True, timeout=60)


def test_node_computes_each_vectors_canonical_json_and_signature() -> None:
    done = node("sign-vectors.mjs", *map(str, VECTORS))
    assert done.returncode == 0, done.stderr
    computed = json.loads(done.stdout)

    assert set(computed) == {path.stem for path in VECTORS}
    for path in VECTORS:
        vector = json.loads(path.read_text(encoding="utf-8"))
        assert computed[path.stem] == {"canonical": vector["canonical"], "signature": vector["signature"]}, path.stem


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"amount": 30.5}', "amount: 30.5 is not a whole number"),
        ('{"n": 9007199254740993}', "n: 9007199254740992 is beyond 2^53 - 1"),
        ('{"text": "\\ud800"}', "text: text with a lone surrogate"),
    ],
)
def test_node_refuses_what_the_worker_cannot_sign(value: str, message: str) -> None:
    script = (
        "import('./billing-producer.mjs').then((m) => {"
        f" try {{ m.canonicalJson(JSON.parse({json.dumps(value)})); process.exit(0); }}"
        " catch (error) { console.error(error.message); process.exit(3); } })"
    )
    done = node("--input-type=module", "-e", script)

    assert done.returncode == 3
    assert message in done.stderr
