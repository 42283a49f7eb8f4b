"""A webhook endpoint for tests: ``http.server`` in a thread on 127.0.0.1, an ephemeral port.

``behaviour`` decides each answer from the request number: a status and a delay (a delay longer
than the client's timeout is a timeout). Every request is recorded before it is answered, so a
request the client gave up on still counts as received (at least once means that).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from worker.webhooks import SIGNATURE_HEADER, verify

Behaviour = Callable[[int], tuple[int, float]]


def always_ok(_: int) -> tuple[int, float]:
    return 200, 0.0


@dataclass
class Received:
    at: float
    body: bytes
    headers: dict[str, str]
    answered: int

    @property
    def event(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.body)
        return loaded


@dataclass
class Receiver:
    secret: str
    behaviour: Behaviour = always_ok
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def answered_ok(self) -> list[Received]:
        with self.lock:
            return [request for request in self.requests if request.answered == 200]

    def all(self) -> list[Received]:
        with self.lock:
            return list(self.requests)

    def ids(self) -> set[str]:
        return {request.event["id"] for request in self.all()}

    def signed(self, request: Received) -> bool:
        return verify(self.secret, request.headers[SIGNATURE_HEADER], request.body, now=time.time())


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with receiver.lock:
                number = len(receiver.requests)
                status, delay = receiver.behaviour(number)
                receiver.requests.append(Received(time.monotonic(), body, dict(self.headers.items()), status))
            if delay:
                time.sleep(delay)
            try:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                pass  # the client gave up (a timeout)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler


@contextmanager
def receiving(secret: str, behaviour: Behaviour = always_ok) -> Iterator[Receiver]:
    receiver = Receiver(secret, behaviour)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def endpoints_json(*endpoints: tuple[str, Receiver] | tuple[str, Receiver, list[str]]) -> str:
    """The ``BILLING_WEBHOOKS_JSON`` document for these receivers."""
    documents = []
    for entry in endpoints:
        name, receiver = entry[0], entry[1]
        document: dict[str, Any] = {"name": name, "url": receiver.url, "secret": receiver.secret}
        if len(entry) == 3:
            document["types"] = entry[2]
        documents.append(document)
    return json.dumps({"endpoints": documents})
