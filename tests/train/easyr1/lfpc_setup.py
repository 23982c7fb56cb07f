"""The pieces of an LFPC step for the multi-turn tests: config, processor, dataset, the trainer's generation batch,
replayed turns, the rollout -- each built by the code a run uses (EasyR1's, or ours), never re-implemented here.

Import inside tests only (these import EasyR1, which needs the package's import stand-ins installed first).
"""

import json
import types
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from locus_data.yaml_config import read_yaml
from locus_reward.tool_calls import TOOL_NAME
from locus_train.recipe import RecipeError, recipe_root

from ..conftest import REPO_ROOT


RECIPES = {1: REPO_ROOT / "tests/config/lfpc_stage1_tiny.yaml", 2: REPO_ROOT / "tests/config/lfpc_stage2_tiny.yaml"}
# checkpoint fixture key -> (the reward's coord_frame, the template opens <think>)
BACKBONES = {"qwen2_5_vl": ("qwen2_5_vl", False), "qwen3_vl_thinking": ("qwen3_vl", True)}


def lfpc_config(stage: int, data_dir: Path, model: Path, backbone: str = "qwen2_5_vl", overrides: tuple = ()) -> Any:
    """Our entry point's config for a test recipe, with the paths easyr1-step passes and the CPU-forced keys."""
    from locus_train.easyr1.main import build_config
    from locus_train.easyr1.step_setup import FORCED, path_overrides

    recipe = RECIPES[stage]
    coord_frame, think = BACKBONES[backbone]
    frame = [
        f"worker.reward.reward_function_kwargs.coord_frame={coord_frame}",
        f"worker.reward.reward_function_kwargs.think_prefilled={str(think).lower()}",
    ]
    paths = path_overrides(read_yaml(recipe, "recipe", RecipeError), recipe_root(recipe), data_dir, str(model))
    return build_config([f"config={recipe}", *paths, *FORCED, *frame, *overrides], recipe_root(recipe))


@dataclass
class Setup:
    """One configured run: EasyR1's config, the system-prompted processor, the train split as EasyR1 reads it."""

    config: Any
    processor: Any
    dataset: Any
    backbone: str

    @property
    def think_prefilled(self) -> bool:
        return BACKBONES[self.backbone][1]

    @property
    def coord_frame(self) -> str:
        return BACKBONES[self.backbone][0]


def make_setup(config: Any, model: Path, backbone: str) -> Setup:
    from locus_agent.processor import load_processor
    from locus_train.easyr1.main import system_prompted
    from locus_train.easyr1.step_setup import rlhf_dataset

    recipe = RECIPES[1]
    processor = system_prompted(load_processor(model), config, recipe_root(recipe))
    dataset = rlhf_dataset(config.data, processor)
    return Setup(config, processor, dataset, backbone)


def generation_batch(setup: Setup, indices: list[int]) -> tuple[Any, Any]:
    """``(batch, gen_batch)`` as ``RayPPOTrainer._make_batch_data`` makes them, plus what the worker adds."""
    from verl.protocol import DataProto
    from verl.utils.dataset import collate_fn

    data = setup.config.data
    meta = {"min_pixels": data.min_pixels, "max_pixels": data.max_pixels, "video_fps": data.video_fps}
    batch = DataProto.from_single_dict(collate_fn([setup.dataset[i] for i in indices]), meta_info=meta)
    batch.non_tensor_batch["uid"] = np.array([str(uuid.uuid4()) for _ in indices], dtype=object)
    generation = batch.pop(
        batch_keys=["input_ids", "attention_mask", "position_ids"],
        non_tensor_batch_keys=["raw_prompt_ids", "multi_modal_data"],
        meta_info_keys=["min_pixels", "max_pixels", "video_fps"],
    )
    tokenizer = setup.processor.tokenizer
    generation.meta_info.update(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return batch, generation


def replay_engine(setup: Setup, lines: list[dict], path: Path, limit_images: int | None = None) -> Any:
    """EasyR1-facing replay engine over ``lines`` ({"id", "turns"}), questions found by their dataset prompts."""
    from locus_agent.backends.replay import ReplayBackend
    from locus_train.easyr1.engine import ReplayEngine

    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    tokenizer = setup.processor.tokenizer
    keys = {
        tuple(setup.dataset[i]["raw_prompt_ids"]): str(setup.dataset.dataset[i]["id"])
        for i in range(len(setup.dataset))
    }
    return ReplayEngine(ReplayBackend(path, tokenizer), keys, tokenizer.eos_token_id, limit_images=limit_images)


def rollout(setup: Setup, engine: Any, cls: type | None = None) -> Any:
    """Our rollout around ``engine`` (``cls``: a subclass to run instead)."""
    from locus_train.easyr1.rollout import MultiTurnRollout

    cls = cls or MultiTurnRollout
    config = setup.config.worker.rollout
    return cls.with_engine(engine, config, setup.processor, config.lfpc, setup.coord_frame)


def run(setup: Setup, engine: Any, indices: list[int], cls: type | None = None) -> Any:
    """The trainer's batch after generation: ``repeat(n, interleave=True).union(rollout output)``."""
    batch, generation = generation_batch(setup, indices)
    output = rollout(setup, engine, cls).generate_sequences(generation)
    return batch.repeat(repeat_times=setup.config.worker.rollout.n, interleave=True).union(output)


def worker(processor: Any, cls: Any = None) -> Any:
    """The FSDP worker as far as its multi-modal inputs go (its constructor needs CUDA); ``cls`` default ours."""
    from locus_train.easyr1.worker import MultiTurnFSDPWorker

    cls = cls or MultiTurnFSDPWorker
    instance = cls.__new__(cls)
    instance._cache, instance.processor = {}, processor
    return instance


def namespace_worker(processor: Any) -> Any:
    return types.SimpleNamespace(_cache={}, processor=processor)


# ----------------------------------------------------------------------------------------------------------------
# turns the tests replay
# ----------------------------------------------------------------------------------------------------------------


def call(box: list[float], label: str = "mark") -> str:
    arguments = {"bbox_2d": [round(v, 1) for v in box], "label": label}
    return "<tool_call>" + json.dumps({"name": TOOL_NAME, "arguments": arguments}) + "</tool_call>"


def turn(setup: Setup, thought: str, rest: str) -> str:
    """An assistant turn as the model writes it (a thinking template opened the think block already)."""
    return ("" if setup.think_prefilled else "<think>") + thought + "</think>" + rest


def view_box(setup: Setup, index: int, box_original: list[float]) -> list[float]:
    """A region of row ``index``'s original, in the frame the model writes boxes in (its view's)."""
    from locus_reward.frames import rescale_box

    entry = setup.dataset.dataset[index]["images"][0]
    view = views(setup, entry)
    return list(rescale_box(box_original, *view.original_size, *view.extent))


def views(setup: Setup, entry: dict) -> Any:
    """The :class:`~locus_agent.view.View` the rollout builds for an image entry."""
    from locus_agent.processor import pixel_limits
    from locus_agent.view import View
    from locus_data.images import open_image
    from locus_reward.options import PixelLimits

    data = setup.config.data
    limits = PixelLimits(data.min_pixels, data.max_pixels, *pixel_limits(setup.processor))
    original = open_image(entry["path"])
    return View.from_stored(open_image(entry), original.size, setup.coord_frame, limits)
