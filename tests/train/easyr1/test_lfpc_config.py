"""The LFPC entry point's config: the ``lfpc:`` section read, checked and moved where EasyR1's worker receives it."""

import pickle

import pytest

from locus_data.errors import UserError
from tests.testing_utils import require_easyr1

from ..conftest import LFPC_ABLATIONS, LFPC_RECIPES, REPO_ROOT
from .lfpc_setup import RECIPES


pytestmark = require_easyr1


def build(*overrides: str, recipe=RECIPES[1]):
    from locus_train.easyr1.main import build_config
    from locus_train.recipe import recipe_root

    return build_config([f"config={recipe}", *overrides], recipe_root(recipe))


def test_the_section_moves_under_the_rollout_config():
    # EasyR1 never sees an unknown top-level key; the worker (which receives config.worker) gets the section
    config = build("lfpc.max_turns=2")
    lfpc = config.worker.rollout.lfpc
    assert (lfpc.max_turns, lfpc.max_tokens_per_turn) == (2, 256)  # the override wins over the recipe's 3
    assert lfpc.system_prompt == "config/lfpc_test_system_prompt.txt"
    assert config.to_dict()["worker"]["rollout"]["lfpc"]["max_turns"] == 2  # printed with the run's config
    assert config.worker.rollout.response_length == config.data.max_response_length  # EasyR1's post-init ran
    assert pickle.loads(pickle.dumps(config)).worker.rollout.lfpc == lfpc  # Ray ships it to the workers as is


@pytest.mark.parametrize(
    "overrides, recipe, message",
    [
        (["lfpc.max_turn=2"], RECIPES[1], "unknown lfpc key 'max_turn'; did you mean 'max_turns'?"),
        (["lfpc.max_turns=0"], RECIPES[1], "lfpc.max_turns must be a positive integer"),
        (["lfpc.max_tokens_per_turn=2048"], RECIPES[1], "exceeds data.max_response_length 1024"),
        (["data.min_pixels=262144"], RECIPES[1], "data.min_pixels 262144 would make EasyR1 upscale every crop"),
        (["worker.rollout.limit_images=0"], RECIPES[1], "worker.rollout.limit_images is 0"),
        (["lfpc.system_prompt=missing.txt"], RECIPES[1], "lfpc.system_prompt missing.txt not found"),
        (["data.max_pixel=1"], RECIPES[1], "EasyR1 rejects the config at `data.max_pixel`"),
        (["worker.actor.model.lora.rank=8"], RECIPES[1], "train LFPC without LoRA"),
        ([], REPO_ROOT / "config/locus_qwen2_5_vl_7b.yaml", "has no `lfpc:` section; single-turn recipes train"),
    ],
)
def test_bad_settings_are_one_line_errors(overrides, recipe, message):
    # each is caught when the config is built, before Ray or a GPU is asked for
    with pytest.raises(UserError) as raised:
        build(*overrides, recipe=recipe)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_the_worker_adopts_easyr1s_rollout(lfpc_data, checkpoints, monkeypatch):
    # MultiTurnFSDPWorker lets EasyR1 build its vLLM rollout (here: without vLLM) and wraps it with the section and
    # the reward's coordinate frame, keeping EasyR1's engine
    from verl.workers.fsdp_workers import FSDPWorker
    from verl.workers.rollout.vllm_rollout_spmd import vLLMRollout

    from locus_agent.processor import load_processor
    from locus_train.easyr1.engine import CPUSamplingParams
    from locus_train.easyr1.rollout import MultiTurnRollout
    from locus_train.easyr1.worker import MultiTurnFSDPWorker

    engine = object()

    def easyr1_build(self):  # what FSDPWorker._build_rollout leaves behind, minus vLLM
        self.rollout = vLLMRollout.__new__(vLLMRollout)
        self.rollout.config, self.rollout.inference_engine = self.config.rollout, engine
        self.rollout.sampling_params = CPUSamplingParams()

    monkeypatch.setattr(FSDPWorker, "_build_rollout", easyr1_build)
    config = build("worker.reward.reward_function_kwargs.coord_frame=qwen3_vl")
    worker = MultiTurnFSDPWorker.__new__(MultiTurnFSDPWorker)
    worker.config, worker.processor = config.worker, load_processor(checkpoints["qwen3_vl_thinking"])
    worker._build_rollout()
    assert isinstance(worker.rollout, MultiTurnRollout) and worker.rollout.inference_engine is engine
    assert worker.rollout.coord_frame == "qwen3_vl" and worker.rollout.lfpc == config.worker.rollout.lfpc
    assert len(worker.rollout.logit_bias) == 4  # every vision marker, not only the image pad


@pytest.mark.parametrize("ablation", [None, *LFPC_ABLATIONS], ids=lambda p: p.stem if p else "recipe")
@pytest.mark.parametrize("recipe", LFPC_RECIPES, ids=lambda p: p.stem)
def test_shipped_recipes_and_overlays_build_with_easyr1s_own_config(recipe, ablation, tmp_path):
    # what the launcher hands our entry point (the recipe, or recipe + overlay as it writes it under runs/) becomes
    # EasyR1's real PPOConfig with the section under the rollout, and passes every LFPC rule
    from omegaconf import OmegaConf

    from locus_data.yaml_config import read_yaml
    from locus_train.easyr1.main import build_config
    from locus_train.easyr1_config import LOCUS_SECTION

    path = recipe
    if ablation is not None:
        overlay = read_yaml(ablation)
        overlay.pop(LOCUS_SECTION, None)  # the launcher's own keys, never EasyR1's
        path = tmp_path / "easyr1_config.yaml"
        OmegaConf.save(OmegaConf.merge(read_yaml(recipe), overlay), path)
    config = build_config([f"config={path}"], REPO_ROOT)
    assert (config.worker.rollout.lfpc.max_turns, config.worker.rollout.lfpc.max_tokens_per_turn) == (5, 2048)
    assert config.worker.actor.global_batch_size == 32 and config.worker.rollout.response_length == 20480
