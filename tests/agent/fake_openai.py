"""A scripted OpenAI-compatible chat-completions server on loopback, for the openai backend's tests.

``FakeServer(reply)`` listens on ``127.0.0.1`` port 0 in a daemon thread; for each POST it records the JSON body and
answers ``reply(body)``: ``(status, payload)`` with ``payload`` a dict sent as JSON. :func:`completion` builds a normal
answer with a ``usage`` block, as ``vllm serve`` sends it.
"""

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def completion(text: str, finish_reason: str = "stop", completion_tokens: int = 7) -> tuple[int, dict]:
    return 200, {
        "id": "cmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "served",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": completion_tokens,
            "total_tokens": 100 + completion_tokens,
        },
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:  # noqa: A002 - keep test output clean
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        server = self.server.fake
        with server.lock:
            server.requests.append(body)
        status, payload = server.reply(body)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class FakeServer:
    """Context manager: ``with FakeServer(reply) as server: ... server.url ... server.requests``."""

    def __init__(self, reply: Callable[[dict], tuple[int, dict]]):
        self.reply = reply
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> "FakeServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
