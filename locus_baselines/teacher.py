"""The client for an OpenAI-compatible chat-completions endpoint (``vllm serve``, or any other), on the openai SDK.

The SDK (an optional extra: ``pip install -e '.[baselines]'``) does the transport every OpenAI-compatible server
documents: HTTP keep-alive in a connection pool shared by the worker threads, timeouts, TLS, the status codes and
the ``Retry-After`` header. :meth:`TeacherClient.complete` sends one request and either returns the answer text or
raises :class:`TeacherError`, whose ``retryable`` says whether trying again can help (timeouts, dropped connections,
429, 5xx, malformed or empty answers) and whose ``fatal`` says the whole run is misconfigured (401, 403, 404: a
wrong key, endpoint or model name), so the caller stops instead of recording 100K identical failures. The SDK's
own retries are off: the retry loop lives with the caller, because an answer that parses but fails the task's
validation is retried the same way, and one loop keeps the count of requests per example exact.

The API key is held only by the SDK, which sends it as the ``Authorization`` header, and never appears in a message:
every error text passes through :meth:`TeacherClient.redact` first, because a misbehaving server may echo request
headers in its error body. Without a key no ``Authorization`` header is sent at all.
"""

import email.utils
import random
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from locus_data.errors import UserError


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


BASELINES_INSTALL = "pip install -e '.[baselines]'"


def _openai() -> Any:
    """The openai module, or a one-line error naming the extra that installs it."""
    try:
        import openai
    except ImportError:
        raise UserError(f"the teacher client needs the openai SDK; install it with: {BASELINES_INSTALL}") from None
    return openai


class TeacherClient:
    """Sends chat-completions requests; safe to share between threads (one SDK client, one connection pool)."""

    def __init__(self, config: TeacherConfig):
        base_url = config.endpoint.rstrip("/").removesuffix("/chat/completions")
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"endpoint must be an http(s) URL such as http://localhost:8000/v1, got {base_url!r}")
        self.config = config
        self._openai = _openai()
        # "EMPTY" is the placeholder vLLM documents for keyless servers; the header itself is then omitted per request
        self._client = self._openai.OpenAI(
            base_url=base_url, api_key=config.api_key or "EMPTY", timeout=config.timeout, max_retries=0
        )
        self._headers = {} if config.api_key else {"Authorization": self._openai.Omit()}

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
        openai = self._openai
        try:
            response = self._client.chat.completions.create(
                model=self.config.model,
                messages=[{"role": "user", "content": content}],
                temperature=self.config.temperature,
                max_tokens=self.config.max_tokens,
                extra_headers=self._headers,
            )
        except openai.APITimeoutError:
            raise TeacherError("timeout", f"no answer within {self.config.timeout:g}s") from None
        except openai.APIConnectionError as err:  # refused, reset or closed without a response
            cause = err.__cause__ or err
            raise TeacherError("connection error", self.redact(f"{type(cause).__name__} {cause}".strip())) from None
        except openai.APIStatusError as err:
            raise self._status_error(err.status_code, err.response.headers, err.response.text) from None
        except (ValueError, openai.APIResponseValidationError) as err:  # a 200 whose body is not a completion
            raise TeacherError("malformed response", self.redact(f"not a chat completion: {err}"[:120])) from None
        return self._answer_text(response)

    def _status_error(self, status: int, headers: Any, body: str) -> TeacherError:
        snippet = self.redact(body[:MAX_ERROR_BODY]).strip()
        if status in FATAL_STATUS:
            hint = {401: "check the API key", 403: "check the API key", 404: "check --endpoint and --model"}[status]
            return TeacherError(f"http {status}", f"{hint}; {snippet}", retryable=False, fatal=True)
        retry_after = _parse_retry_after(headers.get("Retry-After")) if status in (429, 503) else None
        return TeacherError(f"http {status}", snippet, retryable=status in RETRYABLE_STATUS, retry_after=retry_after)

    def _answer_text(self, response: Any) -> str:
        choices = getattr(response, "choices", None)
        if not choices or getattr(choices[0], "message", None) is None:
            snippet = self.redact(str(response)[:80])
            raise TeacherError("malformed response", f"not a chat completion: {snippet!r}")
        choice = choices[0]
        content = choice.message.content
        if isinstance(content, list):  # some servers return content parts even for text
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str) or not content.strip():
            raise TeacherError("empty answer", "")
        if choice.finish_reason == "length":
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
