"""Any OpenAI-compatible chat-completions server (``vllm serve``, or another), through the ``openai`` SDK.

An agent request goes as its chat messages (:attr:`Request.messages`), each image as a ``data:image/png;base64``
URL part, decoded greedily (temperature 0); a request with only a rendered prompt is refused. The server renders the
messages with its own chat template, so serve the checkpoint without a reasoning parser (the agent reads ``<think>``
blocks itself). Token counts come from the server's ``usage``; the loop cannot count a
tool turn's text tokens here, so only model tokens and crop visual tokens are charged to a token budget.

The API key comes from ``OPENAI_API_KEY`` (or the argument); keyless servers get vLLM's placeholder ``EMPTY``.
"""

import base64
import io
import os
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from locus_agent.backends.base import Generation, Request, budgets
from locus_data.errors import UserError


BASELINES_INSTALL = "pip install -e '.[baselines]'"
FATAL_HINTS = {401: "check OPENAI_API_KEY", 403: "check OPENAI_API_KEY", 404: "check --base-url and --model"}


class OpenAIBackend:
    """Chat completions on an OpenAI-compatible server; requests of a batch are sent concurrently."""

    def __init__(
        self,
        model: str,
        base_url: str,
        api_key: str | None = None,
        timeout: float = 600.0,
        max_workers: int = 8,
        max_retries: int = 2,
    ):
        """``model``: the served model name; ``base_url``: the API root, e.g. ``http://localhost:8000/v1``."""
        try:
            import openai  # optional: the baselines extra installs it
        except ImportError:
            raise UserError(f"the openai backend needs the openai SDK; install it with: {BASELINES_INSTALL}") from None
        self.openai = openai
        self.model = model
        self.base_url = base_url
        key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.client = openai.OpenAI(base_url=base_url, api_key=key, timeout=timeout, max_retries=max_retries)
        self.max_workers = max_workers
        self._urls: OrderedDict[int, tuple[Any, str]] = OrderedDict()

    def generate(self, requests: list[Request], max_new_tokens: int | list[int]) -> list[Generation]:
        limits = budgets(max_new_tokens, len(requests))
        messages = [self._messages(request) for request in requests]  # encodes images once, in this thread
        with ThreadPoolExecutor(max_workers=max(1, min(self.max_workers, len(requests)))) as pool:
            return list(pool.map(self._complete, messages, limits))

    def _complete(self, messages: list[dict], max_tokens: int) -> Generation:
        openai = self.openai
        try:
            response = self.client.chat.completions.create(
                model=self.model, messages=messages, temperature=0.0, max_tokens=max_tokens
            )
        except openai.APIConnectionError as err:
            raise UserError(
                f"cannot reach the server at {self.base_url} ({type(err).__name__}); is it running?"
            ) from None
        except openai.APIStatusError as err:
            if err.status_code in FATAL_HINTS:
                hint = FATAL_HINTS[err.status_code]
                raise UserError(f"the server at {self.base_url} answered {err.status_code}; {hint}") from None
            # the SDK has already retried; every command on this backend records its progress, so a rerun resumes
            raise UserError(
                f"the server at {self.base_url} answered {err.status_code} after the SDK's retries; rerun the same "
                "command to resume once it answers again"
            ) from None
        choice = response.choices[0]
        text = choice.message.content or ""
        usage = getattr(response, "usage", None)
        num_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        return Generation(text=text, num_tokens=num_tokens, finished=choice.finish_reason == "stop")

    def _messages(self, request: Request) -> list[dict]:
        if not request.messages:  # a prompt already rendered with a chat template would be templated twice
            raise ValueError("the openai backend takes chat messages (agent requests), not a rendered prompt")
        return [{"role": m["role"], "content": self._content(m["content"])} for m in request.messages]

    def _content(self, content: str | list[dict]) -> str | list[dict]:
        if isinstance(content, str):
            return content
        return [
            {"type": "image_url", "image_url": {"url": self._url(part["image"])}} if part["type"] == "image" else part
            for part in content
        ]

    def _url(self, image: Any) -> str:
        # an episode re-sends every image each turn: encode each once (a small cache keyed by the live object)
        cached = self._urls.get(id(image))
        if cached is not None and cached[0] is image:
            self._urls.move_to_end(id(image))
            return cached[1]
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
        self._urls[id(image)] = (image, url)
        while len(self._urls) > 256:
            self._urls.popitem(last=False)
        return url
