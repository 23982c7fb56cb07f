"""A small, robust client for an OpenAI-compatible chat-completions endpoint (``vllm serve``, or any other).

Standard library only (``http.client``), one keep-alive connection per worker thread. :meth:`TeacherClient.complete`
sends one request and either returns the answer text or raises :class:`TeacherError`, whose ``retryable`` says
whether trying again can help (timeouts, dropped connections, 429, 5xx, malformed or empty answers) and whose
``fatal`` says the whole run is misconfigured (401, 403, 404: a wrong key, endpoint or model name), so the caller
stops instead of recording 100K identical failures. The retry loop itself lives with the caller, because an answer
that parses but fails the task's validation is retried the same way.

The API key is held only in the ``Authorization`` header and never appears in a message: every error text passes
through :meth:`TeacherClient.redact` first, because a misbehaving server may echo request headers in its error body.
"""

import email.utils
import http.client
import json
import random
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field


RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
FATAL_STATUS = frozenset({401, 403, 404})
MAX_ERROR_BODY = 200
"""characters of a server's error body kept in a failure reason"""


@dataclass
class TeacherConfig:
    """Where the teacher is served and how patiently to talk to it."""

    endpoint: str
    """base URL of the OpenAI-compatible API (``http://host:8000/v1``) or the full ``.../chat/completions`` URL"""
    model: str
    """served model name, sent as ``model`` in every request"""
    api_key: str | None = field(default=None, repr=False)
    """bearer token; read from the environment by the CLI, never logged (kept out of ``repr``)"""
    timeout: float = 120.0
    """seconds to wait for the connection and for each read of the response before counting a timeout"""
    max_retries: int = 5
    """retries after the first attempt, so at most ``max_retries + 1`` requests per example"""
    backoff: float = 1.0
    """first retry delay in seconds; doubles per retry, with jitter, up to ``max_backoff``"""
    max_backoff: float = 60.0
    """longest delay between two attempts, including a server's ``Retry-After``"""
    temperature: float = 0.0
    """sampling temperature sent with every request"""
    max_tokens: int = 512
    """completion length limit sent with every request; an answer cut off by it is retried as truncated"""


class TeacherError(Exception):
    """One failed attempt: ``kind`` is a short category for the summary, ``str(err)`` the detail."""

    def __init__(self, kind: str, detail: str, retryable: bool = True, fatal: bool = False, retry_after=None):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.retryable = retryable
        self.fatal = fatal
        self.retry_after: float | None = retry_after
        """seconds the server asked us to wait (``Retry-After``), if it said"""


class TeacherClient:
    """Sends chat-completions requests; safe to share between threads."""

    def __init__(self, config: TeacherConfig):
        url = config.endpoint.rstrip("/")
        if not url.endswith("/chat/completions"):
            url += "/chat/completions"
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"endpoint must be an http(s) URL such as http://localhost:8000/v1, got {url!r}")
        self.config = config
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = parts.path + (f"?{parts.query}" if parts.query else "")
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if config.api_key:
            self._headers["Authorization"] = f"Bearer {config.api_key}"
        self._local = threading.local()

    def redact(self, text: str) -> str:
        """``text`` with the API key replaced, for anything that may be logged or written."""
        key = self.config.api_key
        return text.replace(key, "***") if key else text

    def retry_delay(self, retry: int, error: TeacherError | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based): exponential with jitter, or ``Retry-After``."""
        # full jitter on the upper half: concurrent workers that failed together do not retry in lockstep
        delay = self.config.backoff * 2 ** (retry - 1) * random.uniform(0.5, 1.0)
        if error is not None and error.retry_after is not None:
            delay = max(delay, error.retry_after)
        return min(delay, self.config.max_backoff)

    def complete(self, content: list[dict]) -> str:
        """One user turn of ``content`` parts in, the answer text out; raises TeacherError."""
        body = json.dumps(
            {
                "model": self.config.model,
                "messages": [{"role": "user", "content": content}],
                "temperature": self.config.temperature,
                "max_tokens": self.config.max_tokens,
            }
        ).encode("utf-8")
        try:
            status, headers, payload = self._post(body)
        except TeacherError:
            raise
        except TimeoutError as err:  # socket.timeout is an alias since 3.10
            self._drop_connection()
            raise TeacherError("timeout", f"no answer within {self.config.timeout:g}s") from err
        except (http.client.HTTPException, OSError) as err:
            # RemoteDisconnected, ConnectionResetError, BrokenPipeError, refused connections ...
            self._drop_connection()
            raise TeacherError("connection error", self.redact(type(err).__name__ + f" {err}".rstrip())) from None
        if status != 200:
            raise self._status_error(status, headers, payload)
        return self._answer_text(payload)

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._https:
                conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self.config.timeout, context=ssl.create_default_context()
                )
            else:
                conn = http.client.HTTPConnection(self._host, self._port, timeout=self.config.timeout)
            self._local.conn = conn
        return conn

    def _drop_connection(self) -> None:
        # after any transport error the connection state is unknown; the next attempt opens a fresh one
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _post(self, body: bytes) -> tuple[int, http.client.HTTPMessage, bytes]:
        conn = self._connection()
        conn.request("POST", self._path, body=body, headers=self._headers)
        response = conn.getresponse()
        payload = response.read()
        if response.will_close:
            self._drop_connection()
        return response.status, response.headers, payload

    def _status_error(self, status: int, headers: http.client.HTTPMessage, payload: bytes) -> TeacherError:
        snippet = self.redact(payload.decode("utf-8", "replace")[:MAX_ERROR_BODY]).strip()
        detail = f"{snippet}" if snippet else ""
        if status in FATAL_STATUS:
            hint = {401: "check the API key", 403: "check the API key", 404: "check --endpoint and --model"}[status]
            return TeacherError(f"http {status}", f"{hint}; {detail}", retryable=False, fatal=True)
        retry_after = _parse_retry_after(headers.get("Retry-After")) if status in (429, 503) else None
        return TeacherError(f"http {status}", detail, retryable=status in RETRYABLE_STATUS, retry_after=retry_after)

    def _answer_text(self, payload: bytes) -> str:
        try:
            choice = json.loads(payload)["choices"][0]
            message = choice["message"]
            content = message.get("content")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            snippet = self.redact(payload.decode("utf-8", "replace")[:80])
            raise TeacherError("malformed response", f"not a chat completion: {snippet!r}") from None
        if isinstance(content, list):  # some servers return content parts even for text
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str) or not content.strip():
            raise TeacherError("empty answer", "")
        if choice.get("finish_reason") == "length":
            raise TeacherError("truncated answer", f"hit max_tokens={self.config.max_tokens}")
        return content


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
