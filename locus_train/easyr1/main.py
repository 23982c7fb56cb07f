"""Train an LFPC recipe on EasyR1: ``python3 -m locus_train.easyr1.main config=RECIPE.yaml [key=value ...]``.

The same command line as ``python3 -m verl.trainer.main``, for recipes with an ``lfpc:`` section (single-turn LOCUS
recipes keep using EasyR1's entry point unchanged). :func:`build_config` reads and removes the ``lfpc:`` section
(from the recipe and from ``lfpc.<key>=value`` overrides), builds EasyR1's ``PPOConfig`` exactly as EasyR1's main
does (structured defaults <- YAML <- CLI, ``to_object``, ``deep_post_init``) with the section moved under
``worker.rollout.lfpc`` (:class:`MultiTurnRolloutConfig`: the one place EasyR1's worker receives), and checks the
rules of :func:`locus_train.easyr1.config.lfpc_errors`.

:class:`MultiTurnRunner` then starts EasyR1's ``RayPPOTrainer`` as EasyR1's ``Runner`` does, with three of our
classes in the places ``RayPPOTrainer`` takes them (EasyR1's runner hard-codes its own, so the wiring is restated
here): :class:`~locus_train.easyr1.worker.MultiTurnFSDPWorker` for actor, rollout and reference,
:class:`~locus_train.easyr1.reward.MultiTurnRewardManager` for the training and validation rewards, and a processor
whose chat template opens with the agent's system prompt (:func:`locus_train.prompting.set_system_prompt`), so
EasyR1's dataset renders [system, user(image, question)] as ``locus-eval agent`` does. The worker never renders a
chat template (tool turns are explicit text), so no template override has to reach it.
"""

import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from omegaconf import OmegaConf
from verl.trainer.config import PPOConfig
from verl.workers.config import RolloutConfig, WorkerConfig

from locus_data.errors import UserError
from locus_data.yaml_config import read_yaml
from locus_reward.options import LfpcOptions
from locus_train.easyr1.config import LFPC_SECTION, LfpcConfig, lfpc_errors, read_lfpc, system_prompt_text
from locus_train.recipe import RecipeError


USAGE = "usage: python3 -m locus_train.easyr1.main config=RECIPE.yaml [key=value ...]"


@dataclass
class MultiTurnRolloutConfig(RolloutConfig):
    """EasyR1's rollout config and the recipe's ``lfpc:`` section (no sampling-params name, so vLLM never sees it)."""

    lfpc: LfpcConfig = field(default_factory=LfpcConfig)
    """the recipe's ``lfpc:`` section, moved here by :func:`build_config`"""


@dataclass
class MultiTurnWorkerConfig(WorkerConfig):
    """EasyR1's worker config with :class:`MultiTurnRolloutConfig`."""

    rollout: MultiTurnRolloutConfig = field(default_factory=MultiTurnRolloutConfig)
    """rollout settings, the ``lfpc:`` section included"""


@dataclass
class MultiTurnPPOConfig(PPOConfig):
    """EasyR1's ``PPOConfig`` with :class:`MultiTurnWorkerConfig`."""

    worker: MultiTurnWorkerConfig = field(default_factory=MultiTurnWorkerConfig)
    """actor, rollout, reference and reward settings"""


def split_lfpc(layer: Any) -> tuple[Any, dict[str, Any] | None]:
    """``(layer without lfpc:, the lfpc: section as a plain dict or None)``."""
    section = layer.pop(LFPC_SECTION, None)
    return layer, None if section is None else OmegaConf.to_container(section)


def coord_frame_of(config: PPOConfig) -> str:
    """The reward's coordinate frame: the frame the agent writes boxes in."""
    return LfpcOptions.from_kwargs(config.worker.reward.reward_function_kwargs).coord_frame


def build_config(argv: list[str], root: str | Path | None = None) -> MultiTurnPPOConfig:
    """EasyR1's config for ``config=RECIPE key=value ...``, the ``lfpc:`` section under ``worker.rollout.lfpc``.

    ``root``: where relative paths of the section start (None: the working directory, as EasyR1's own paths).
    Raises UserError for a recipe without an ``lfpc:`` section and for every rule of ``lfpc_errors``.
    """
    from omegaconf.errors import OmegaConfBaseException

    cli = OmegaConf.from_dotlist(list(argv))
    if "config" not in cli:
        raise UserError(USAGE)
    path = cli.pop("config")
    file_config, recipe_section = split_lfpc(read_yaml(path, "recipe", RecipeError))
    cli, cli_section = split_lfpc(cli)
    if recipe_section is None:
        raise UserError(
            f"{path} has no `{LFPC_SECTION}:` section; single-turn recipes train with python3 -m verl.trainer.main"
        )
    lfpc = read_lfpc([recipe_section, cli_section])
    try:
        merged = OmegaConf.merge(OmegaConf.structured(MultiTurnPPOConfig()), file_config, cli)
        config: MultiTurnPPOConfig = OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "?"
        raise UserError(f"EasyR1 rejects the config at `{key}`: {str(err).splitlines()[0]}") from None
    config.worker.rollout.lfpc = lfpc
    config.deep_post_init()
    errors = lfpc_errors(lfpc, dataclasses.asdict(config), root)
    if errors:
        raise UserError(errors[0] + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""))
    return config


def system_prompted(processor: Any, config: MultiTurnPPOConfig, root: str | Path | None = None) -> Any:
    """``processor`` with the run's system prompt in its chat template (the dataset's prompts are the agent's)."""
    from locus_train.prompting import set_system_prompt

    set_system_prompt(processor, system_prompt_text(config.worker.rollout.lfpc, coord_frame_of(config), root))
    return processor


@ray.remote(num_cpus=1)
class MultiTurnRunner:
    """EasyR1's trainer with the crop-tool worker, reward manager and system-prompted processor."""

    def run(self, config: MultiTurnPPOConfig) -> None:
        from verl.single_controller.ray import RayWorkerGroup
        from verl.trainer.data_loader import create_dataloader
        from verl.trainer.ray_trainer import RayPPOTrainer, ResourcePoolManager, Role
        from verl.utils.tokenizer import get_processor, get_tokenizer

        from locus_train.easyr1.reward import MultiTurnRewardManager
        from locus_train.easyr1.worker import MultiTurnFSDPWorker

        print(json.dumps(config.to_dict(), indent=2))
        model = config.worker.actor.model
        common = dict(
            override_chat_template=config.data.override_chat_template,
            trust_remote_code=model.trust_remote_code,
            use_fast=True,
        )
        tokenizer = get_tokenizer(model.model_path, **common)
        processor = system_prompted(get_processor(model.model_path, **common), config)
        tokenizer.chat_template = processor.chat_template
        worker = ray.remote(MultiTurnFSDPWorker)
        pool = "global_pool"
        resources = ResourcePoolManager(
            resource_pool_spec={pool: [config.trainer.n_gpus_per_node] * config.trainer.nnodes},
            mapping={Role.ActorRolloutRef: pool, Role.Critic: pool},
        )
        rewards = ray.remote(MultiTurnRewardManager).options(num_cpus=config.worker.reward.num_cpus)
        train_dataloader, val_dataloader = create_dataloader(config.data, tokenizer, processor)
        trainer = RayPPOTrainer(
            config=config,
            tokenizer=tokenizer,
            processor=processor,
            train_dataloader=train_dataloader,
            val_dataloader=val_dataloader,
            role_worker_mapping={Role.ActorRolloutRef: worker, Role.Critic: worker},
            resource_pool_manager=resources,
            ray_worker_group_cls=RayWorkerGroup,
            reward_fn=rewards.remote(config.worker.reward, tokenizer),
            val_reward_fn=rewards.remote(config.worker.reward, tokenizer),
        )
        trainer.init_workers()
        trainer.fit()


# EasyR1's main starts Ray with these variables (verl/trainer/main.py at b44b311)
RUNTIME_ENV = {
    "env_vars": {
        "TOKENIZERS_PARALLELISM": "true",
        "NCCL_DEBUG": "WARN",
        "VLLM_LOGGING_LEVEL": "WARN",
        "TORCH_NCCL_AVOID_RECORD_STREAMS": "1",
        "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:False",
        "CUDA_DEVICE_MAX_CONNECTIONS": "1",
        "VLLM_ALLREDUCE_USE_SYMM_MEM": "0",
    }
}


def main(argv: list[str] | None = None) -> int:
    try:
        config = build_config(sys.argv[1:] if argv is None else argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not ray.is_initialized():
        ray.init(runtime_env=RUNTIME_ENV)
    runner = MultiTurnRunner.remote()
    ray.get(runner.run.remote(config))
    if config.trainer.ray_timeline is not None:
        ray.timeline(filename=config.trainer.ray_timeline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
