"""A scripted OpenAI-compatible chat-completions server on loopback, for the annotation client's tests.

``FakeTeacher(script)`` listens on ``127.0.0.1`` port 0 in a daemon thread. For the ``n``-th request (1-based) it
calls ``script(n, prompt_text)`` and performs the returned action:

* ``("ok", text)``: a normal completion; ``("length", text)``: the same, cut off at ``max_tokens``
* ``("slow", seconds, text)``: a normal completion after a delay (keeps a run busy long enough to kill it)
* ``("stall", seconds)``: say nothing for that long (beyond the client's timeout), then answer
* ``("status", code, headers, body)``: an HTTP error, e.g. 429 with ``Retry-After``, 500, 401
* ``("drop",)``: close the connection without a response
* ``("malformed",)``: 200 with a body that is not JSON; ``("empty",)``: 200 with empty content
* ``("echo_auth", code)``: an error whose body repeats the request's Authorization header (a leaky server)

It refuses (HTTP 503) anything past ``max_requests``, so a client bug cannot loop forever, and it records every
request's prompt text and Authorization header for the assertions.
"""

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


Action = tuple
Script = Callable[[int, str], Action]


def prompt_text(request: dict) -> str:
    """The text parts of the request's user turn, joined."""
    parts = request["messages"][0]["content"]
    return "\n".join(p["text"] for p in parts if p.get("type") == "text")


def completion(text: str, finish_reason: str = "stop") -> bytes:
    return json.dumps(
        {
            "id": "cmpl-test",
            "object": "chat.completion",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}
            ],
        }
    ).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as vLLM serves it
    server: "_Server"

    def log_message(self, format, *args) -> None:  # noqa: A002 - keep test output clean
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        teacher = self.server.teacher
        request = json.loads(body)
        n = teacher.record(request, self.headers.get("Authorization"))
        if n > teacher.max_requests:
            return self._send(503, b'{"error": "test server request budget exhausted"}')
        action = teacher.script(n, prompt_text(request))
        kind = action[0]
        if kind == "ok":
            self._send(200, completion(action[1]))
        elif kind == "slow":
            time.sleep(action[1])
            self._send(200, completion(action[2]))
        elif kind == "length":
            self._send(200, completion(action[1], finish_reason="length"))
        elif kind == "stall":
            time.sleep(action[1])
            self._send(200, completion("too late"))
        elif kind == "status":
            self._send(action[1], action[3].encode(), action[2])
        elif kind == "drop":
            self.close_connection = True  # no response at all: the client sees the connection closed
        elif kind == "malformed":
            self._send(200, b'{"choices": [{"message": ')
        elif kind == "empty":
            self._send(200, completion(""))
        elif kind == "echo_auth":
            self._send(action[1], json.dumps({"error": f"bad header {self.headers.get('Authorization')}"}).encode())
        else:
            raise ValueError(f"unknown action {action!r}")

    def _send(self, status: int, payload: bytes, headers: dict | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client gave up (stall past its timeout): nothing to answer
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a stalled handler must not hold up the test's teardown
    teacher: "FakeTeacher"

    def handle_error(self, request, client_address) -> None:
        pass  # broken pipes from clients that timed out are expected


class FakeTeacher:
    """Context manager: ``with FakeTeacher(script) as server: ... server.url ...``."""

    def __init__(self, script: Script, max_requests: int = 500):
        self.script = script
        self.max_requests = max_requests
        self.prompts: list[str] = []
        self.auth_headers: list[str | None] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.teacher = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def requests(self) -> int:
        return len(self.prompts)

    def record(self, request: dict, auth: str | None) -> int:
        with self._lock:
            self.prompts.append(prompt_text(request))
            self.auth_headers.append(auth)
            return len(self.prompts)

    def __enter__(self) -> "FakeTeacher":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
