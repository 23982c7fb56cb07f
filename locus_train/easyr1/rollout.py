"""The crop-tool rollout: EasyR1's ``vLLMRollout`` running ``locus_agent``'s turn loop instead of one generate call.

``MultiTurnRollout.generate_sequences`` takes the batch EasyR1's trainer pops for generation (the dataset's prompt
tensors, ``raw_prompt_ids``, ``multi_modal_data``; pixel limits in ``meta_info``) and returns the batch of
:mod:`.batch`. Per prompt:

1. Its one image entry is the *view* ``{"bytes": <view image>, "path": <absolute path of the ORIGINAL>}`` (the LFPC
   export's row format). The original is decoded once per prompt and shared by its n rollouts; the view's frame is
   what EasyR1's ``process_image`` (data pixel limits) and the processor make of the stored view
   (:meth:`locus_agent.view.View.from_stored`), the frame the reward maps boxes from.
2. n episodes run :func:`locus_agent.loop.run_episodes` through :class:`.engine.TokenBackend`: at most
   ``lfpc.max_turns`` assistant turns of at most ``lfpc.max_tokens_per_turn`` tokens, ``data.max_response_length``
   tokens in all (tool turns included); each crop tool hands out at most ``limit_images - 1`` crops.
3. Crops are cut by :class:`locus_agent.crop_tool.CropTool` at original resolution up to the crop cap
   (:func:`.config.crop_tokens`: ``data.max_pixels`` within the processor's limit) with the processor's lower limit,
   so each crop is a fixed point of ``process_image`` and of the processor: vLLM's grid, the actor's grid and the
   tool's token count agree.

Sampling: one request per trajectory and turn, ``n=1``, each with its own seed (:func:`.engine.request_seed` of the
run seed, data-parallel rank, call, prompt, rollout and turn): with EasyR1's one ``seed`` in every request all n
rollouts of a prompt would sample the same tokens and GRPO would see no difference. The logit bias bans every
vision marker (``<|vision_start|>``, ``<|vision_end|>``, ``<|image_pad|>``, ``<|video_pad|>``), not only the image
pad EasyR1 bans: a sampled marker breaks mrope and the next forward pass. ``meta_info`` overrides (validation's
``val_override_config``) apply as in EasyR1, through ``update_sampling_params``.

Only :meth:`MultiTurnRollout.__init__` touches vLLM (through EasyR1's constructor); :meth:`~MultiTurnRollout.adopt`
turns an EasyR1-built rollout into this one (the worker does that) and :meth:`~MultiTurnRollout.with_engine` builds
one around any engine with vLLM's ``generate`` (a CPU step, the tests).
"""

import os
from typing import Any

import torch
from verl.protocol import DataProto
from verl.workers.rollout.vllm_rollout_spmd import vLLMRollout

from locus_agent.backends import Segment
from locus_agent.conversation import generation_prefix
from locus_agent.crop_tool import CropTool
from locus_agent.loop import Episode, LoopConfig, run_episodes
from locus_agent.processor import pixel_limits, vision_token_ids
from locus_agent.view import View
from locus_data.images import open_image
from locus_reward.options import PixelLimits
from locus_train.easyr1.batch import Trajectory, assemble
from locus_train.easyr1.config import LfpcConfig, crop_tokens
from locus_train.easyr1.engine import CPUSamplingParams, TokenBackend, request_seed


SAMPLING_KEYS = ("temperature", "top_p", "top_k", "ignore_eos")
"""sampling settings each request inherits from the rollout's (possibly overridden) sampling params"""


def vision_logit_bias(processor: Any) -> dict[int, float]:
    """-100 on every Qwen-VL vision marker: the policy never writes one (EasyR1 bans only the image pad)."""
    return dict.fromkeys(sorted(vision_token_ids(processor)), -100.0)


def view_entry(multi_modal_data: Any) -> dict[str, Any]:
    """The row's one image entry, checked against the LFPC row contract."""
    images = (multi_modal_data or {}).get("images") or []
    if len(images) != 1 or not isinstance(images[0], dict):
        raise ValueError(
            f"an LFPC row holds exactly one image struct (the view), got {len(images)} image(s); "
            "write the data with `locus-data export-lfpc`"
        )
    entry = images[0]
    path = entry.get("path")
    if not entry.get("bytes") or not path or not os.path.isabs(path):
        raise ValueError(
            "an LFPC image struct is {'bytes': <view image>, 'path': <absolute path of the original>}, got path "
            f"{path!r}; write the data with `locus-data export-lfpc`"
        )
    return entry


class MultiTurnRollout(vLLMRollout):
    """EasyR1's vLLM rollout, generating crop-tool trajectories (see the module docstring)."""

    def __init__(self, model_path: str, config: Any, tokenizer: Any, processor: Any, coord_frame: str, **kwargs: Any):
        """EasyR1's constructor (starts vLLM), then the crop-tool settings; ``config.lfpc`` is the ``lfpc:``
        section, ``coord_frame`` the reward's."""
        super().__init__(model_path, config, tokenizer, processor, **kwargs)
        self._setup(processor, config.lfpc, coord_frame)

    @classmethod
    def adopt(cls, rollout: vLLMRollout, processor: Any, lfpc: LfpcConfig, coord_frame: str) -> "MultiTurnRollout":
        """This rollout around an EasyR1-built one, keeping its engine, sampling params and LoRA settings."""
        adopted = cls.__new__(cls)
        adopted.__dict__.update(rollout.__dict__)
        adopted._setup(processor, lfpc, coord_frame)
        return adopted

    @classmethod
    def with_engine(
        cls,
        engine: Any,
        config: Any,
        processor: Any,
        lfpc: LfpcConfig,
        coord_frame: str,
        sampling_params: Any = None,
    ) -> "MultiTurnRollout":
        """This rollout around any engine with vLLM's ``generate``, without EasyR1's constructor (which starts vLLM
        itself): CPU steps, tests, or a ``vllm.LLM`` of one's own.

        ``config`` is EasyR1's rollout config (its ``response_length`` set, as ``PPOConfig`` post-init sets it);
        ``sampling_params``: the engine's sampling-params object (default: :class:`.engine.CPUSamplingParams` from
        ``config``); each request gets a new one of its type.
        """
        rollout = cls.__new__(cls)
        rollout.rank = int(os.getenv("RANK", "0"))
        rollout.config, rollout.inference_engine = config, engine
        rollout.pad_token_id = processor.tokenizer.pad_token_id
        rollout.return_video_metadata, rollout.use_tqdm, rollout.lora_kwargs = False, False, {}
        if sampling_params is None:
            sampling_params = CPUSamplingParams(
                n=config.n,
                temperature=config.temperature,
                top_p=config.top_p,
                top_k=config.top_k,
                seed=config.seed,
                max_tokens=config.response_length,
                logit_bias=vision_logit_bias(processor),
                ignore_eos=config.ignore_eos,
            )
        rollout.sampling_params = sampling_params
        rollout._setup(processor, lfpc, coord_frame)
        return rollout

    def _setup(self, processor: Any, lfpc: LfpcConfig, coord_frame: str) -> None:
        if getattr(self, "lora_kwargs", None):  # lfpc_errors refuses such a recipe first
            raise ValueError("the crop-tool rollout does not pass LoRA adapters to vLLM; train without LoRA")
        if self.config.limit_images < 1:
            raise ValueError(
                f"worker.rollout.limit_images must be >= 1 for the crop-tool rollout, got {self.config.limit_images}"
            )
        self.processor, self.lfpc, self.coord_frame = processor, lfpc, coord_frame
        self.logit_bias = vision_logit_bias(processor)
        self.processor_min_pixels, self.processor_max_pixels = pixel_limits(processor)
        self.calls = 0
        """generate_sequences calls so far (part of every request's seed)"""
        world_rank = int(os.getenv("RANK", "0"))
        self.dp_rank = world_rank // max(1, self.config.tensor_parallel_size)  # tp ranks share a data shard

    # ------------------------------------------------------------------------------------------------------------

    def request_seed(self, prompt: int, sample: int, turn: int) -> int | None:
        """The sampling seed of one request: distinct per rollout and turn, equal on every tensor-parallel rank."""
        if self.config.seed is None:
            return None
        return request_seed(self.config.seed, self.dp_rank, self.calls, prompt, sample, turn)

    def sampling(self, request: Any, max_tokens: int) -> Any:
        """One request's sampling params: the rollout's settings, n=1, the request's seed and turn budget."""
        kwargs = {key: getattr(self.sampling_params, key) for key in SAMPLING_KEYS}
        return type(self.sampling_params)(
            n=1,
            seed=self.request_seed(int(request.key), request.sample, request.turn),
            max_tokens=max_tokens,
            detokenize=False,
            logit_bias=dict(self.logit_bias),
            **kwargs,
        )

    def crop_tool(self, original: Any, view: View, max_crop_tokens: int) -> CropTool:
        """One trajectory's crop tool: crops at most ``max_crop_tokens``, the processor's lower pixel limit, and no
        more crops than ``limit_images`` leaves beside the view (vLLM refuses a prompt with more images)."""
        return CropTool(
            original,
            view,
            max_crop_tokens=max_crop_tokens,
            min_pixels=self.processor_min_pixels,
            max_crops=self.config.limit_images - 1,
        )

    def eos_token_ids(self, meta_info: dict[str, Any]) -> set[int]:
        eos = meta_info.get("eos_token_id", self.processor.tokenizer.eos_token_id)
        return set(eos if isinstance(eos, (list, tuple)) else [eos])

    @torch.no_grad()
    def generate_sequences(self, prompts: DataProto) -> DataProto:
        input_ids, attention_mask = prompts.batch["input_ids"], prompts.batch["attention_mask"]
        meta = prompts.meta_info
        raw_prompt_ids = prompts.non_tensor_batch.pop("raw_prompt_ids")
        multi_modal_data = prompts.non_tensor_batch.pop("multi_modal_data")
        if len(raw_prompt_ids) != input_ids.size(0):
            raise RuntimeError("vllm sharding manager is not work properly.")  # EasyR1's own check
        min_pixels, max_pixels = meta["min_pixels"], meta["max_pixels"]
        limits = PixelLimits(min_pixels, max_pixels, self.processor_min_pixels, self.processor_max_pixels)
        max_crop_tokens = crop_tokens(self.coord_frame, max_pixels, self.processor_max_pixels)
        with self.update_sampling_params(**meta):
            n = self.sampling_params.n
            backend = TokenBackend(
                self.inference_engine,
                self.processor,
                min_pixels,
                max_pixels,
                self.sampling,
                self.eos_token_ids(meta),
                use_tqdm=self.use_tqdm,
            )
            episodes = []
            for index, (raw_ids, data) in enumerate(zip(raw_prompt_ids, multi_modal_data)):
                entry = view_entry(data)
                view_image, original = open_image(entry), open_image(entry["path"])
                if view_image.width > original.width or view_image.height > original.height:
                    raise ValueError(
                        f"the view image {view_image.width}x{view_image.height} is larger than its original "
                        f"{original.width}x{original.height} ({entry['path']}); a view is the original downsampled"
                    )
                original = original.convert("RGB")  # decoded once per prompt, shared by its rollouts
                view = View.from_stored(view_image, original.size, self.coord_frame, limits)
                text = self.processor.tokenizer.decode(raw_ids, skip_special_tokens=False)
                for sample in range(n):
                    tool = self.crop_tool(original, view, max_crop_tokens)
                    prompt = Segment("prompt", text, [view_image])
                    episode = Episode(
                        key=str(index),
                        question="",
                        view=view,
                        tool=tool,
                        sample=sample,
                        segments=[prompt],
                        generation_prefix=generation_prefix(text),
                    )
                    backend.start(episode.key, sample, raw_ids, [entry])
                    episodes.append(episode)
            loop = LoopConfig(
                max_turns=self.lfpc.max_turns,
                max_new_tokens=self.lfpc.max_tokens_per_turn,
                max_total_tokens=self.config.response_length,
            )
            run_episodes(episodes, backend, loop, progress=self.use_tqdm)
        self.calls += 1
        trajectories = [self.trajectory(episode, backend) for episode in episodes]
        return assemble(
            input_ids.repeat_interleave(n, dim=0),
            attention_mask.repeat_interleave(n, dim=0),
            trajectories,
            self.config.response_length,
            self.pad_token_id,
            self.processor,
            meta,
        )

    @staticmethod
    def trajectory(episode: Episode, backend: TokenBackend) -> Trajectory:
        """An episode's row: its streams (synced to the end) and the figures the reward manager logs."""
        streams = backend.sync(episode.request())
        calls = episode.calls
        crops = [call for call in calls if call.error is None]
        return Trajectory(
            response_ids=streams.response_ids,
            response_mask=streams.response_mask,
            images=streams.images,
            image_grid_thw=streams.grids,
            extras={
                "rollout_turns": float(len(episode.turns)),
                "rollout_tool_calls": float(len(calls)),
                "rollout_crops": float(len(crops)),
                "rollout_max_turns": float(episode.end_reason == "max_turns"),
                "rollout_crop_tokens": float(sum(call.visual_tokens for call in crops)),
                "rollout_tool_tokens": float(streams.tool_tokens),
            },
        )
