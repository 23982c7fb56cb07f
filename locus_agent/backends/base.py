"""The backend interface: requests, segments, generations, sampling, and what a backend must offer."""

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class Segment:
    """One piece of an episode's context, in order (the prompt, then model and tool turns)."""

    role: str
    """``prompt``, ``model`` or ``tool``"""
    text: str
    """chat text exactly as appended (special tokens included, each image as one placeholder)"""
    images: list[Any] = field(default_factory=list)
    """the images whose placeholders ``text`` holds, in order, as handed to the model"""
    token_ids: list[int] | None = None
    """``model`` segments: the ids the engine sampled (training never re-tokenizes them)"""


@dataclass
class Request:
    """One prompt to complete."""

    prompt: str
    """full chat text so far, ending with the generation prompt (for agents ``"".join`` of the segments' text)"""
    images: list[Any] = field(default_factory=list)
    """PIL images in placeholder order (single-turn: already resized by :func:`locus_train.images.process_image`)"""
    segments: list[Segment] = field(default_factory=list)
    """agents: the context as segments (token backends may append incrementally); empty for single-turn users"""
    messages: list[dict] = field(default_factory=list)
    """agents: the same context as chat messages, images as ``{"type": "image", "image": PIL}`` parts (API backends)"""
    key: str = ""
    """which question (its id)"""
    sample: int = 0
    """which rollout of the question's group (0 in evaluation)"""
    turn: int = 0
    """which assistant turn of the episode this request asks for (0-based)"""


@dataclass
class Generation:
    """One completed response."""

    text: str
    """decoded without special tokens, as EasyR1 hands it to the reward"""
    num_tokens: int
    """generated tokens including the end-of-turn token"""
    finished: bool
    """False when the response hit ``max_new_tokens`` (truncated)"""
    token_ids: list[int] | None = None
    """the generated ids, end-of-turn token included (token backends)"""


@dataclass(frozen=True)
class Sampling:
    """Sampling instead of greedy decoding (training rollouts; evaluation decodes greedily)."""

    temperature: float = 1.0
    """softmax temperature (> 0)"""
    top_p: float = 1.0
    """nucleus sampling mass (1.0: off)"""
    top_k: int = 0
    """keep the k most likely tokens (0: off)"""
    seed: int | None = None
    """seed for the sampler (None: unseeded)"""

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0 for sampling (greedy is Sampling=None), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")


class Backend(Protocol):
    """What the evaluators and the agent loop call; a backend that can count tokens also has ``count_text_tokens``.

    ``count_text_tokens(text) -> int`` (token backends): tokens of chat text as written, each image placeholder
    counting one pad; the loop uses it to charge tool turns to an episode's token budget.
    """

    def generate(self, requests: list[Request], max_new_tokens: int | list[int]) -> list[Generation]:
        """One generation per request, in order; ``max_new_tokens`` is one budget for all or one per request."""
        ...


def budgets(max_new_tokens: int | list[int], count: int) -> list[int]:
    """One generation budget per request.

    >>> budgets(8, 3), budgets([4, 9], 2)
    ([8, 8, 8], [4, 9])
    """
    if isinstance(max_new_tokens, int):
        return [max_new_tokens] * count
    if len(max_new_tokens) != count:
        raise ValueError(f"{len(max_new_tokens)} generation budgets for {count} requests")
    return list(max_new_tokens)
