"""The token-level backend the crop-tool loop talks to inside EasyR1's rollout, and the engines it can drive.

:class:`TokenBackend` is a :class:`locus_agent.backends.Backend`. Per trajectory it keeps the two token streams
EasyR1 keeps for a prompt (docs/lfpc_rollout.md explains why both exist):

* the **vLLM stream**: the dataset's ``raw_prompt_ids`` (one ``<|image_pad|>`` per image), then every turn, each
  image still one pad -- vLLM expands the pads itself from the images it is handed;
* the **model stream**: the dataset's ``input_ids`` (pads expanded), then every turn with each pad repeated
  ``t*h*w / merge**2`` times for its image's grid -- what the actor scores.

Model turns are appended as the ids the engine sampled (never re-tokenized: decoding and encoding again need not give
the same ids); tool turns are tokenized from the chat text :mod:`locus_agent.conversation` wrote (the chat template
is never asked, so a template override that reaches only EasyR1's driver cannot make the worker's turns differ).
Each image is handed to the engine and measured for its grid exactly as EasyR1's rollout and actor do: EasyR1's own
``process_image`` with the data pixel limits, then the processor.

The backend calls ``engine.generate(prompts, sampling_params, use_tqdm=...)`` with one
``{"prompt_token_ids", "multi_modal_data"}`` dict and one sampling-params object per request: ``vllm.LLM`` in
production, or on a CPU machine one of the engines below, behind the same interface:

* :class:`HFGenerateEngine` -- Hugging Face ``generate`` on the same checkpoint (vLLM needs a GPU), reading the
  sampling parameters vLLM reads (seed, temperature, top-p/k, max tokens, additive logit bias, n);
* :class:`ReplayEngine` -- recorded assistant turns (``locus_agent``'s replay format), so a test or a user can give a
  group known trajectories.
"""

import hashlib
from dataclasses import dataclass, field
from typing import Any

from verl.utils.dataset import process_image

from locus_agent.backends import Generation, Request
from locus_agent.backends.replay import ReplayBackend


@dataclass
class CPUSamplingParams:
    """The ``vllm.SamplingParams`` attributes EasyR1's rollout and ours set, for the CPU engines (vLLM's class
    cannot be built without vLLM); ``update_sampling_params`` sets them by name like vLLM's."""

    n: int = 1
    """samples per request"""
    temperature: float = 1.0
    """softmax temperature; 0 decodes greedily"""
    top_p: float = 1.0
    """nucleus mass (1: off)"""
    top_k: int = -1
    """keep the k most likely tokens (-1 or 0: off)"""
    seed: int | None = None
    """the request's sampling seed (None: unseeded)"""
    max_tokens: int = 16
    """tokens to generate at most"""
    detokenize: bool = False
    """unused (token ids are returned)"""
    logit_bias: dict[int, float] | None = None
    """added to the logits of these token ids before sampling (vLLM's semantics; -100 bans a token)"""
    ignore_eos: bool = False
    """unused (CPU engines always stop at the end-of-turn token)"""


@dataclass
class Completion:
    """One sample of a request, as vLLM's ``CompletionOutput`` has it."""

    token_ids: list[int]
    finish_reason: str
    """``stop`` (the end-of-turn token was sampled, and is the last id) or ``length`` (hit ``max_tokens``)"""


@dataclass
class EngineOutput:
    """One request's samples, as vLLM's ``RequestOutput`` has them."""

    outputs: list[Completion]


def request_seed(*parts: Any) -> int:
    """A sampling seed that depends on every part (run seed, rank, call, prompt, sample, turn): stable across
    processes (unlike ``hash``) and the same on every tensor-parallel rank, so their engines sample alike.

    >>> request_seed(1, 0, 0, 3, 0, 0) == request_seed(1, 0, 0, 3, 0, 0) != request_seed(1, 0, 0, 3, 1, 0)
    True
    """
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little") & 0x7FFFFFFF


@dataclass
class Streams:
    """One trajectory's token streams and images, as far as its segments have been appended."""

    vllm_ids: list[int]
    """prompt and turns, each image one pad (what vLLM is sent)"""
    response_ids: list[int] = field(default_factory=list)
    """the model stream after the prompt, pads expanded (the batch's ``responses`` row)"""
    response_mask: list[int] = field(default_factory=list)
    """per ``response_ids`` token: 1 sampled by the policy, 0 written by the tool"""
    images: list[Any] = field(default_factory=list)
    """``multi_modal_data["images"]`` of the row: the prompt's stored entries, then the crops (PIL), in order"""
    processed: list[Any] = field(default_factory=list)
    """each image after EasyR1's ``process_image`` (what the engine and the actor's processor get)"""
    grids: list[list[int]] = field(default_factory=list)
    """each image's ``image_grid_thw`` row"""
    consumed: int = 1
    """segments of the episode appended so far (the prompt is the first)"""

    @property
    def tool_tokens(self) -> int:
        """Tokens of the response written by the tool (masked out of the loss)."""
        return len(self.response_mask) - sum(self.response_mask)


class TokenBackend:
    """The loop's backend inside the rollout: two token streams per trajectory, an engine behind vLLM's interface."""

    def __init__(
        self,
        engine: Any,
        processor: Any,
        min_pixels: int | None,
        max_pixels: int | None,
        sampling: Any,
        eos_token_ids: set[int],
        use_tqdm: bool = False,
    ):
        """``sampling(request, max_tokens) -> params``: the sampling-params object of one request (its seed is the
        rollout's business); ``min_pixels``/``max_pixels``: the data limits EasyR1 resizes every image with."""
        self.engine, self.processor, self.tokenizer = engine, processor, processor.tokenizer
        self.min_pixels, self.max_pixels = min_pixels, max_pixels
        self.sampling, self.eos_token_ids, self.use_tqdm = sampling, set(eos_token_ids), use_tqdm
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(processor.image_token)
        self.merge = processor.image_processor.merge_size**2
        self.streams: dict[tuple[str, int], Streams] = {}

    def start(self, key: str, sample: int, raw_prompt_ids: list[int], images: list[Any]) -> Streams:
        """Open a trajectory's streams at the dataset's prompt (its vLLM ids and stored image entries)."""
        streams = Streams(vllm_ids=list(raw_prompt_ids))
        self._add_images(streams, images)
        self.streams[(key, sample)] = streams
        return streams

    def _add_images(self, streams: Streams, images: list[Any]) -> list[int]:
        """Append images to a trajectory; returns their visual-token counts."""
        if not images:
            return []
        processed = [process_image(image, self.min_pixels, self.max_pixels) for image in images]
        grids = self.processor.image_processor(images=processed, return_tensors="pt")["image_grid_thw"].tolist()
        streams.images += list(images)
        streams.processed += processed
        streams.grids += grids
        return [t * h * w // self.merge for t, h, w in grids]

    def count_text_tokens(self, text: str) -> int:
        """Tokens of chat text as written (each image placeholder one pad): how the loop charges tool turns."""
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def sync(self, request: Request) -> Streams:
        """Append the segments of ``request`` the streams do not hold yet; returns the streams."""
        streams = self.streams[(request.key, request.sample)]
        for segment in request.segments[streams.consumed :]:
            if segment.role == "model":
                if segment.token_ids is None:
                    raise ValueError("a model segment without the ids the engine sampled cannot be trained on")
                streams.vllm_ids += segment.token_ids
                streams.response_ids += segment.token_ids
                streams.response_mask += [1] * len(segment.token_ids)
            elif segment.role == "tool":
                ids = self.tokenizer.encode(segment.text, add_special_tokens=False)
                counts = iter(self._add_images(streams, segment.images))
                expanded = []
                for token in ids:
                    expanded += [token] * next(counts) if token == self.image_token_id else [token]
                if next(counts, None) is not None:
                    raise ValueError("a tool turn holds fewer image placeholders than images")
                streams.vllm_ids += ids
                streams.response_ids += expanded
                streams.response_mask += [0] * len(expanded)
            else:
                raise ValueError(f"unexpected {segment.role!r} segment after the prompt")
            streams.consumed += 1
        return streams

    def generate(self, requests: list[Request], max_new_tokens: int | list[int]) -> list[Generation]:
        from locus_agent.backends import budgets

        limits = budgets(max_new_tokens, len(requests))
        prompts, params = [], []
        for request, limit in zip(requests, limits):
            streams = self.sync(request)
            prompts.append(
                {"prompt_token_ids": list(streams.vllm_ids), "multi_modal_data": {"image": streams.processed}}
            )
            params.append(self.sampling(request, limit))
        kwargs = {"requests": requests} if getattr(self.engine, "takes_requests", False) else {}
        outputs = self.engine.generate(prompts=prompts, sampling_params=params, use_tqdm=self.use_tqdm, **kwargs)
        return [self._generation(output.outputs[0]) for output in outputs]

    def _generation(self, completion: Any) -> Generation:
        ids = list(completion.token_ids)
        finished = getattr(completion, "finish_reason", None) == "stop" or bool(ids and ids[-1] in self.eos_token_ids)
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        return Generation(text=text, num_tokens=len(ids), finished=finished, token_ids=ids)


def check_image_limit(prompt: dict, limit_images: int | None) -> list[Any]:
    """The prompt's images; ValueError when they are more than ``limit_images``, as vLLM started with
    ``limit_mm_per_prompt={"image": limit_images}`` refuses such a prompt."""
    images = (prompt.get("multi_modal_data") or {}).get("image") or []
    if limit_images is not None and len(images) > limit_images:
        raise ValueError(f"At most {limit_images} image(s) may be provided in one prompt ({len(images)} given)")
    return images


def _per_request(sampling_params: Any, count: int) -> list[Any]:
    """vLLM's ``generate`` takes one params object for all requests or one per request."""
    if isinstance(sampling_params, (list, tuple)):
        if len(sampling_params) != count:
            raise ValueError(f"{len(sampling_params)} sampling params for {count} prompts")
        return list(sampling_params)
    return [sampling_params] * count


class HFGenerateEngine:
    """``vllm.LLM.generate`` by Hugging Face ``generate`` on the same checkpoint (vLLM needs a GPU).

    vLLM expands each image placeholder of ``prompt_token_ids`` into the image's tokens itself; so does this, from the
    grid the processor gives the images it is handed. Per request it seeds torch's sampler with the request's seed,
    draws ``n`` samples, adds ``logit_bias`` to the logits, and stops at the end-of-turn token or ``max_tokens``.
    Like vLLM started with ``limit_mm_per_prompt``, it refuses a prompt with more images than ``limit_images``.
    """

    def __init__(self, model: Any, processor: Any, eos_token_ids: set[int], limit_images: int | None = None):
        self.model, self.processor, self.eos_token_ids = model, processor, sorted(eos_token_ids)
        self.limit_images = limit_images
        self.image_token_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
        self.merge = processor.image_processor.merge_size**2

    def expand(self, prompt_token_ids: list[int], images: list[Any]) -> tuple[list[int], dict[str, Any]]:
        """The model's input ids (each pad repeated for its image) and the images' processor outputs."""
        if not images:
            return list(prompt_token_ids), {}
        vision = dict(self.processor.image_processor(images=images, return_tensors="pt"))
        counts = iter((vision["image_grid_thw"].prod(-1) // self.merge).tolist())
        ids: list[int] = []
        for token in prompt_token_ids:
            ids += [token] * next(counts) if token == self.image_token_id else [token]
        return ids, vision

    def generate(self, prompts: list[dict], sampling_params: Any, lora_request: Any = None, use_tqdm: bool = False):
        import torch  # heavy: only when a model runs

        outputs = []
        for prompt, params in zip(prompts, _per_request(sampling_params, len(prompts))):
            images = check_image_limit(prompt, self.limit_images)
            ids, vision = self.expand(prompt["prompt_token_ids"], images)
            inputs = {"input_ids": torch.tensor([ids]), "attention_mask": torch.ones(1, len(ids), dtype=torch.long)}
            inputs.update(vision)
            kwargs: dict[str, Any] = dict(
                max_new_tokens=params.max_tokens,
                eos_token_id=self.eos_token_ids,
                pad_token_id=self.processor.tokenizer.pad_token_id,
                num_return_sequences=params.n,
            )
            if params.logit_bias:
                kwargs["sequence_bias"] = {(int(token),): float(bias) for token, bias in params.logit_bias.items()}
            if params.temperature > 0:
                kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
                kwargs["top_k"] = params.top_k if params.top_k and params.top_k > 0 else 0  # 0: off, as vLLM's -1
            else:
                kwargs["do_sample"] = False
            if params.seed is not None:
                torch.manual_seed(params.seed)
            with torch.inference_mode():
                generated = self.model.generate(**inputs, **kwargs)[:, len(ids) :].tolist()
            outputs.append(EngineOutput([self._completion(row) for row in generated]))
        return outputs

    def _completion(self, row: list[int]) -> Completion:
        end = next((i + 1 for i, token in enumerate(row) if token in self.eos_token_ids), None)
        if end is None:
            return Completion(row, "length")
        return Completion(row[:end], "stop")  # generate pads a finished sample to the batch's length


class ReplayEngine:
    """Recorded assistant turns behind vLLM's interface: a question's turn k is the k-th string of its line.

    The replay file is ``locus_agent``'s (``{"id", "turns"}`` lines); rollout k of a group uses line k of its
    question (cycling), so a group can be given different trajectories. The question is found by its prompt:
    ``keys`` maps each dataset prompt's vLLM ids (``raw_prompt_ids``) to its id, and every later turn's prompt
    starts with them. Running past a line's turns stops at once (the end-of-turn token), as a model that has
    nothing to add would. Like vLLM, it refuses a prompt with more images than ``limit_images``.
    """

    takes_requests = True
    """the token backend passes the loop's requests along (which rollout of the group, which turn)"""

    def __init__(
        self,
        replay: ReplayBackend,
        keys: dict[tuple[int, ...], str],
        eos_token_id: int,
        limit_images: int | None = None,
    ):
        """``limit_images``: refuse prompts with more images, as vLLM does (see :func:`check_image_limit`)."""
        self.replay, self.keys, self.eos_token_id, self.limit_images = replay, keys, eos_token_id, limit_images
        self.lengths = sorted({len(prompt) for prompt in keys}, reverse=True)

    def key_of(self, prompt_token_ids: list[int]) -> str:
        """The question id of a prompt (its own or a later turn's)."""
        for length in self.lengths:
            key = self.keys.get(tuple(prompt_token_ids[:length]))
            if key is not None:
                return key
        raise KeyError("a prompt that starts with no dataset prompt the replay engine was given")

    def generate(
        self,
        prompts: list[dict],
        sampling_params: Any,
        lora_request: Any = None,
        use_tqdm: bool = False,
        requests: list[Request] | None = None,
    ):
        outputs = []
        for index, (prompt, params) in enumerate(zip(prompts, _per_request(sampling_params, len(prompts)))):
            check_image_limit(prompt, self.limit_images)
            key = self.key_of(prompt["prompt_token_ids"])
            if requests is not None:  # the multi-turn rollout: one sample per request
                samples = [(requests[index].sample, requests[index].turn)]
            else:  # EasyR1's single-turn rollout: n samples of turn 0
                samples = [(sample, 0) for sample in range(params.n)]
            completions = []
            for sample, turn in samples:
                request = Request(prompt="", key=key, sample=sample, turn=turn)
                generation = self.replay.generate([request], [params.max_tokens])[0]
                ids = list(generation.token_ids or [self.eos_token_id])
                completions.append(Completion(ids, "stop" if generation.finished else "length"))
            outputs.append(EngineOutput(completions))
        return outputs
