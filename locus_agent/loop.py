"""The agent's turn loop, batched over episodes: generate, parse, crop, answer -- engine-independent.

Each round asks the backend for one assistant turn of every episode still running, then advances each episode:

* The turn is appended as the model wrote it, and read with :func:`locus_reward.tool_calls.parse_turn` (the same
  parser the LFPC rewards use).
* A turn with an ``<answer>`` ends the episode (``answer``); its calls are not executed.
* Otherwise every call of the turn is executed in order by the episode's :class:`~locus_agent.crop_tool.CropTool`
  and recorded (box in the view frame and in original pixels, crop size, visual tokens, or why it was rejected).
  Then the episode ends if the turn was cut by its token limit (``truncated``, or ``token_budget`` when the episode's
  total budget was the limit), if it held no call (``no_action``), or if it was the ``max_turns``-th assistant turn
  (``max_turns``); an episode that ends without an answer is scored wrong.
* Else all results go back in ONE tool turn (crops and error texts in call order). Its tokens are the crops' visual
  tokens plus its text tokens when the backend can count them (``count_text_tokens``); a tool turn that would leave
  no room in ``max_total_tokens`` is not appended and the episode ends (``token_budget``).

``max_turns`` counts assistant turns. Each turn may write at most ``max_new_tokens`` tokens, and no more than the
episode's total budget has left. Evaluation decodes greedily (the backends' default). The loop imports neither torch
nor vllm nor EasyR1: a backend is anything with ``generate`` (:class:`locus_agent.backends.Backend`).
"""

import time
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from locus_agent.backends import Backend, Generation, Request, Segment
from locus_agent.conversation import first_messages, generation_prefix, model_turn, render_prompt, system_prompt
from locus_agent.conversation import tool_turn as render_tool_turn
from locus_agent.crop_tool import CropResult, CropTool
from locus_agent.view import View
from locus_data.errors import UserError
from locus_reward.parsing import THINK_OPEN
from locus_reward.tool_calls import parse_turn


END_REASONS = ("answer", "max_turns", "token_budget", "no_action", "truncated")


@dataclass(frozen=True)
class LoopConfig:
    """How long an episode may run."""

    max_turns: int = 12
    """assistant turns per episode (the paper: 12 in evaluation, 5 in training)"""
    max_new_tokens: int = 2048
    """tokens one assistant turn may write (Table 12's "single response max tokens")"""
    max_total_tokens: int | None = None
    """model + tool tokens of the whole response after the prompt (EasyR1's ``response_length``; null: no limit)"""

    def __post_init__(self) -> None:
        for name, flag in (("max_turns", "--max-turns"), ("max_new_tokens", "--max-new-tokens")):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"{name} must be a positive integer ({flag}), got {value!r}")
        total = self.max_total_tokens
        if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 1):
            raise UserError(f"max_total_tokens must be a positive integer or null, got {total!r}")


@dataclass
class CallRecord:
    """One tool call of a turn, as the tool executed it."""

    box_view: list[float] | None
    """the box as the model wrote it (view frame); None when the call did not parse"""
    box_orig: list[int] | None
    """the model's region in original pixels (clamped, rounded outwards, grown); None when rejected"""
    crop_size: list[int] | None
    """``[w, h]`` of the image cut for the model (before its resize); None when rejected"""
    visual_tokens: int
    """visual tokens of the crop as handed to the model"""
    error: str | None
    """None, or why the call was rejected (a parser reason or a crop-tool reason)"""
    label: str | None
    """the call's ``label`` argument"""
    crop_box: list[int] | None = None
    """the original-pixel region the crop shows: ``box_orig``, the GT box (crop mode gt), None for noise"""
    crop: Any = field(default=None, repr=False, compare=False)
    """the image cut for the model (PIL, before its resize); not serialized"""

    @classmethod
    def of(cls, result: CropResult) -> "CallRecord":
        def listed(box: Any) -> list | None:
            return None if box is None else list(box)

        return cls(
            box_view=listed(result.box_view),
            box_orig=listed(result.box_orig),
            crop_size=listed(result.crop_size),
            visual_tokens=result.visual_tokens,
            error=result.error,
            label=result.label,
            crop_box=listed(result.crop_box),
            crop=result.crop,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fields (the crop image left out)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "crop"}


@dataclass
class TurnRecord:
    """One assistant turn: what the model wrote and what the tool did with it."""

    text: str
    """the turn as generated, decoded without special tokens"""
    num_tokens: int
    """tokens the turn generated, end-of-turn token included"""
    finished: bool
    """the engine stopped at the end of the turn (False: cut by its token limit)"""
    calls: list[CallRecord] = field(default_factory=list)
    """its tool calls in order (none for an answering turn: those are not executed)"""
    seconds: float = 0.0
    """the turn's share of the batched generate call, plus its own tool time"""
    tool_tokens: int = 0
    """tokens of the tool turn appended after it (0 when none was)"""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fields."""
        return {
            "text": self.text,
            "num_tokens": self.num_tokens,
            "finished": self.finished,
            "calls": [call.to_dict() for call in self.calls],
            "seconds": self.seconds,
            "tool_tokens": self.tool_tokens,
        }


@dataclass
class Episode:
    """One question's run: its view and crop tool, the context so far, and what happened each turn."""

    key: str
    """the question's id"""
    question: str
    """the user text after the image"""
    view: View
    """the full image as the model sees it"""
    tool: CropTool
    """the question's crop tool (holds the decoded original)"""
    sample: int = 0
    """which rollout of the question's group (0 in evaluation)"""
    segments: list[Segment] = field(default_factory=list)
    """the context: the prompt, then model and tool turns, as appended"""
    messages: list[dict] = field(default_factory=list)
    """the same context as chat messages"""
    generation_prefix: str = ""
    """what the chat template writes when it opens an assistant turn (``<think>\\n`` for thinking templates)"""
    turns: list[TurnRecord] = field(default_factory=list)
    """one record per assistant turn"""
    answer: str | None = None
    """the text of the answer block, or None"""
    end_reason: str | None = None
    """None while running, then one of ``END_REASONS``"""
    response_tokens: int = 0
    """model and tool tokens after the prompt so far"""

    @classmethod
    def start(
        cls,
        key: str,
        question: str,
        view: View,
        tool: CropTool,
        processor: Any = None,
        system: str | None = None,
        sample: int = 0,
    ) -> "Episode":
        """A fresh episode: the system prompt (default: the backbone family's), the full image, the question.

        ``processor``: renders the first prompt with the checkpoint's chat template (None: Qwen ChatML).
        """
        system = system_prompt(view.coord_frame) if system is None else system
        messages = first_messages(question, view.image, system)
        prompt = render_prompt(messages, processor)
        segment = Segment("prompt", prompt, [view.image])
        return cls(str(key), question, view, tool, sample, [segment], messages, generation_prefix(prompt))

    @property
    def done(self) -> bool:
        return self.end_reason is not None

    @property
    def think_prefilled(self) -> bool:
        """Each model turn starts inside a think block the template opened."""
        return THINK_OPEN in self.generation_prefix

    @property
    def response(self) -> str:
        """The chat text after the prompt (model and tool turns, special tokens included)."""
        return "".join(segment.text for segment in self.segments[1:])

    @property
    def calls(self) -> list[CallRecord]:
        """Every executed call of the episode, in order."""
        return [call for turn in self.turns for call in turn.calls]

    def request(self) -> Request:
        """The next turn's request: the whole context so far."""
        return Request(
            prompt="".join(segment.text for segment in self.segments),
            images=[image for segment in self.segments for image in segment.images],
            segments=list(self.segments),
            messages=list(self.messages),
            key=self.key,
            sample=self.sample,
            turn=len(self.turns),
        )


def run_episodes(
    episodes: list[Episode], backend: Backend, config: LoopConfig, progress: bool = True
) -> list[Episode]:
    """Run every episode to its end, one batched backend call per round; returns the same list, advanced."""
    pending = [episode for episode in episodes if not episode.done]
    count_text_tokens = getattr(backend, "count_text_tokens", None)
    with tqdm(total=len(episodes), initial=len(episodes) - len(pending), desc="episodes", disable=not progress) as bar:
        while pending:
            limits = [_turn_limit(episode, config) for episode in pending]
            for episode, limit in zip(pending, limits):
                if limit < 1:  # nothing left of the total budget (only an exhausted budget gets here)
                    episode.end_reason = "token_budget"
            running = [(episode, limit) for episode, limit in zip(pending, limits) if limit >= 1]
            if running:
                started = time.perf_counter()
                requests = [episode.request() for episode, _ in running]
                generations = backend.generate(requests, [limit for _, limit in running])
                if len(generations) != len(running):
                    raise RuntimeError(f"the backend returned {len(generations)} generations for {len(running)}")
                share = (time.perf_counter() - started) / len(running)
                for (episode, limit), generation in zip(running, generations):
                    _advance(episode, generation, limit, share, config, count_text_tokens)
            bar.update(sum(episode.done for episode in pending))
            pending = [episode for episode in pending if not episode.done]
    return episodes


def _turn_limit(episode: Episode, config: LoopConfig) -> int:
    if config.max_total_tokens is None:
        return config.max_new_tokens
    return min(config.max_new_tokens, config.max_total_tokens - episode.response_tokens)


def _advance(
    episode: Episode,
    generation: Generation,
    limit: int,
    seconds: float,
    config: LoopConfig,
    count_text_tokens: Any,
) -> None:
    started = time.perf_counter()
    text, message = model_turn(generation.text, generation.finished, episode.generation_prefix)
    episode.segments.append(Segment("model", text, [], generation.token_ids))
    episode.messages.append(message)
    episode.response_tokens += generation.num_tokens
    record = TurnRecord(generation.text, generation.num_tokens, generation.finished)
    episode.turns.append(record)
    parsed = parse_turn(generation.text, think_prefilled=episode.think_prefilled)
    if parsed.answer is not None:
        episode.answer, episode.end_reason = parsed.answer, "answer"
    else:
        results = [episode.tool(call) for call in parsed.calls]
        record.calls = [CallRecord.of(result) for result in results]
        episode.end_reason = _end_without_answer(episode, generation, limit, bool(results), config)
        if episode.end_reason is None:
            _append_tool_turn(episode, record, results, config, count_text_tokens)
    record.seconds = seconds + time.perf_counter() - started


def _end_without_answer(
    episode: Episode, generation: Generation, limit: int, has_calls: bool, config: LoopConfig
) -> str | None:
    if not generation.finished:
        return "token_budget" if limit < config.max_new_tokens else "truncated"
    if not has_calls:
        return "no_action"
    if len(episode.turns) >= config.max_turns:
        return "max_turns"
    return None


def _append_tool_turn(
    episode: Episode, record: TurnRecord, results: list[CropResult], config: LoopConfig, count_text_tokens: Any
) -> None:
    text, images, message = render_tool_turn(results, episode.generation_prefix)
    tokens = sum(result.visual_tokens for result in results)
    if count_text_tokens is not None:  # each placeholder's one pad counted in the text becomes the crop's tokens
        tokens += count_text_tokens(text) - len(images)
    total = config.max_total_tokens
    if total is not None and episode.response_tokens + tokens >= total:
        episode.end_reason = "token_budget"  # no room left for the next turn: the tool turn is not appended
        return
    episode.segments.append(Segment("tool", text, images))
    episode.messages.append(message)
    episode.response_tokens += tokens
    record.tool_tokens = tokens
