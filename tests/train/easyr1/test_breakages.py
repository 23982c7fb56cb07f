"""The eight ways EasyR1's single-turn code breaks silently on multi-turn batches (issue 19 item 2): for each, EasyR1's
own behaviour is run on the same data and shown to fail, then ours is shown to hold.

a. the ``uid``-keyed multi-modal cache      e. dicts shared after ``np.repeat``
b. the reward decoding ``sum(response_mask)`` f. vision markers sampled by the policy
c. ``get_response_mask`` cutting at the first  g. the chat-template override reaching only the driver
   end-of-turn token                          h. ``limit_images`` below what a trajectory holds
d. one sampling seed for every request
"""

import copy

import numpy as np
import pytest
import torch

from tests.testing_utils import require_easyr1

from .lfpc_rows import BOXES
from .lfpc_setup import (
    call,
    generation_batch,
    lfpc_config,
    make_setup,
    namespace_worker,
    replay_engine,
    rollout,
    run,
    turn,
    view_box,
    worker,
)


pytestmark = require_easyr1

OVERRIDES = ("lfpc.max_tokens_per_turn=400", "data.max_response_length=1024")


@pytest.fixture(scope="module")
def zoom_group(lfpc_data, checkpoints, tmp_path_factory):
    """q0's two rollouts: the first zooms on the mark, then answers A (right); the second answers B at once."""
    config = lfpc_config(1, lfpc_data, checkpoints["qwen2_5_vl"], overrides=OVERRIDES)
    setup = make_setup(config, checkpoints["qwen2_5_vl"], "qwen2_5_vl")
    lines = [
        {"id": "q0", "turns": [turn(setup, "Small.", call(view_box(setup, 0, BOXES[0]))), zoomed_answer(setup)]},
        {"id": "q0", "turns": [turn(setup, "Blue.", "<answer>B</answer>")]},
    ]
    engine = replay_engine(setup, lines, tmp_path_factory.mktemp("zoom") / "replay.jsonl")
    return setup, run(setup, engine, [0])


def zoomed_answer(setup) -> str:
    return turn(setup, "Red.", "<answer>A</answer>")


def copy_of(batch):
    """A batch whose non-tensor dict can be written without touching the original's."""
    return batch[list(range(len(batch)))]


def actor_for(setup, checkpoint):
    from transformers import AutoModelForImageTextToText
    from verl.workers.actor.dp_actor import DataParallelPPOActor

    model = AutoModelForImageTextToText.from_pretrained(checkpoint)
    config = copy.deepcopy(setup.config.worker.actor)
    config.micro_batch_size_per_device_for_experience = 2  # the group of two rollouts in one micro-batch
    return DataParallelPPOActor(config, model)


def test_a_multi_modal_inputs_are_per_trajectory(zoom_group, checkpoints):
    # EasyR1 processes the first row of a uid and hands its pixels to the siblings: the zooming rollout's two images
    # reach the sibling that saw one, and the forward pass refuses; keyed per trajectory each row gets its own
    from verl.workers.fsdp_workers import FSDPWorker

    setup, batch = zoom_group
    actor = actor_for(setup, checkpoints["qwen2_5_vl"])
    stock = copy_of(batch)
    stock.meta_info["temperature"] = 1.0
    FSDPWorker._process_multi_modal_inputs(namespace_worker(setup.processor), stock)
    inputs = stock.non_tensor_batch["multi_modal_inputs"]
    assert inputs[1] is inputs[0] and len(inputs[1]["image_grid_thw"]) == 2  # row 1 holds one image
    with pytest.raises(ValueError, match="do not match"):
        actor.compute_log_prob(stock)

    ours = copy_of(batch)
    ours.meta_info["temperature"] = 1.0
    worker(setup.processor)._process_multi_modal_inputs(ours)
    inputs = ours.non_tensor_batch["multi_modal_inputs"]
    assert [len(row["image_grid_thw"]) for row in inputs] == [2, 1]
    assert torch.isfinite(actor.compute_log_prob(ours)).all()
    assert "uid" in ours.non_tensor_batch and ours.non_tensor_batch["uid"][0] == ours.non_tensor_batch["uid"][1]


def test_b_the_reward_reads_the_whole_trajectory(zoom_group):
    # EasyR1 decodes sum(response_mask) tokens: with the tool turn masked, that prefix ends before the answer
    from verl.workers.reward import AutoRewardManager

    from locus_reward.lfpc import compute_score_stage1
    from locus_train.easyr1.reward import MultiTurnRewardManager

    setup, batch = zoom_group
    reward_config, tokenizer = setup.config.worker.reward, setup.processor.tokenizer
    _, stock = AutoRewardManager(reward_config, tokenizer).compute_reward(batch)
    assert stock["no_answer"][0] == 1.0 and stock["accuracy"][0] == 0.0  # the right answer goes unseen

    rewards, ours = MultiTurnRewardManager(reward_config, tokenizer).compute_reward(batch)
    length = batch.batch["responses"].size(-1)
    for row in range(len(batch)):
        real = batch.batch["attention_mask"][row, -length:].bool()
        text = tokenizer.decode(batch.batch["responses"][row][real], skip_special_tokens=True)
        item = {
            "response": text,
            "response_length": int(real.sum()),
            "ground_truth": batch.non_tensor_batch["ground_truth"][row],
        }
        expected = compute_score_stage1([item], **reward_config.reward_function_kwargs)[0]
        assert ours["overall"][row] == pytest.approx(expected["overall"])
        last = int(real.sum()) - 1  # on the last token: the end of the last model turn
        assert rewards[row, last] == pytest.approx(expected["overall"]) and rewards[row].count_nonzero() <= 1
    assert ours["overall"][0] == pytest.approx(2.2) and ours["tool"][0] == 1.0  # right, with a crop
    assert ours["rollout_crops"] == [1.0, 0.0]  # the rollout's figures are logged with the reward's


def test_c_the_response_mask_is_built_per_turn(zoom_group):
    # EasyR1's get_response_mask zeroes everything after the first <|im_end|>: the answer turn would not be trained
    from verl.utils.torch_functional import get_response_mask

    setup, batch = zoom_group
    tokenizer = setup.processor.tokenizer
    responses = batch.batch["responses"]
    stock = get_response_mask(responses, tokenizer.eos_token_id, dtype=torch.long)
    ours = batch.batch["response_mask"]

    def decoded(mask):
        return tokenizer.decode(responses[0][mask[0].bool()], skip_special_tokens=False)

    first = turn(setup, "Small.", call(view_box(setup, 0, BOXES[0])))
    assert decoded(stock) == first + "<|im_end|>"  # the tool turn and the answer are cut away together
    assert decoded(ours) == first + "<|im_end|>" + zoomed_answer(setup) + "<|im_end|>"
    tool = batch.batch["attention_mask"][0, -responses.size(-1) :].bool() & ~ours[0].bool()
    assert "<tool_response>" in tokenizer.decode(responses[0][tool], skip_special_tokens=False)


def test_d_each_rollout_samples_with_its_own_seed(lfpc_data, checkpoints):
    # EasyR1 copies one seed into every request: n single-sample requests of a prompt then sample the same tokens,
    # and GRPO sees no difference within the group; our seeds differ per rollout and turn
    from transformers import AutoModelForImageTextToText

    from locus_train.easyr1.engine import HFGenerateEngine
    from locus_train.easyr1.rollout import MultiTurnRollout

    class OneSeed(MultiTurnRollout):
        def request_seed(self, prompt, sample, turn):
            return self.config.seed  # what vLLMRollout's SamplingParams carries for every request

    overrides = ("lfpc.max_tokens_per_turn=24", "worker.rollout.n=3")
    config = lfpc_config(1, lfpc_data, checkpoints["qwen2_5_vl"], overrides=overrides)
    setup = make_setup(config, checkpoints["qwen2_5_vl"], "qwen2_5_vl")
    model = AutoModelForImageTextToText.from_pretrained(checkpoints["qwen2_5_vl"])
    engine = HFGenerateEngine(model, setup.processor, {setup.processor.tokenizer.eos_token_id})
    stock = run(setup, engine, [0], OneSeed).batch["responses"]
    assert torch.equal(stock[0], stock[1]) and torch.equal(stock[1], stock[2])
    ours = rollout(setup, engine)
    first = ours.generate_sequences(generation_batch(setup, [0])[1]).batch["responses"]
    assert not torch.equal(first[0], first[1]) and not torch.equal(first[1], first[2])
    later = ours.generate_sequences(generation_batch(setup, [0])[1]).batch["responses"]
    assert not torch.equal(first, later)  # every call draws new seeds
    again = rollout(setup, engine).generate_sequences(generation_batch(setup, [0])[1]).batch["responses"]
    assert torch.equal(first, again)  # and a run with the same seed draws the same tokens


def test_e_every_row_has_its_own_multi_modal_dict(zoom_group):
    # np.repeat (EasyR1's _repeat_interleave) copies references: a crop appended to one rollout shows up in all
    from verl.workers.rollout.vllm_rollout_spmd import _repeat_interleave

    setup, batch = zoom_group
    view = setup.dataset.dataset[0]["images"]
    stock = _repeat_interleave(np.array([{"images": list(view)}], dtype=object), 2)
    stock[0]["images"].append("crop of rollout 0")
    assert stock[1]["images"][-1] == "crop of rollout 0"

    rows = batch.non_tensor_batch["multi_modal_data"]
    assert rows[0] is not rows[1] and rows[0]["images"] is not rows[1]["images"]
    assert [len(row["images"]) for row in rows] == [2, 1]
    rows[0]["images"].append("extra")
    assert len(rows[1]["images"]) == 1
    rows[0]["images"].pop()


def test_f_the_policy_never_writes_a_vision_marker(lfpc_data, checkpoints):
    # EasyR1 bans only <|image_pad|>: a policy drawn to <|vision_start|> writes it, and mrope over the trajectory
    # (EasyR1's get_rope_index) runs past the end; with every marker banned the batch assembles
    from transformers import AutoModelForImageTextToText
    from verl.workers.rollout.vllm_rollout_spmd import _get_logit_bias

    from locus_train.easyr1.engine import HFGenerateEngine
    from locus_train.easyr1.rollout import MultiTurnRollout

    config = lfpc_config(1, lfpc_data, checkpoints["qwen2_5_vl"], overrides=("lfpc.max_tokens_per_turn=12",))
    setup = make_setup(config, checkpoints["qwen2_5_vl"], "qwen2_5_vl")
    tokenizer = setup.processor.tokenizer
    vision_start = tokenizer.convert_tokens_to_ids("<|vision_start|>")

    class DrawnToVisionStart(HFGenerateEngine):
        def generate(self, prompts, sampling_params, **kwargs):
            for params in sampling_params:  # a policy whose logits favour the marker by 50
                bias = dict(params.logit_bias or {})
                params.logit_bias = {**bias, vision_start: bias.get(vision_start, 0.0) + 50.0}
            return super().generate(prompts, sampling_params, **kwargs)

    class EasyR1Bias(MultiTurnRollout):
        def _setup(self, processor, lfpc, coord_frame):
            super()._setup(processor, lfpc, coord_frame)
            self.logit_bias = _get_logit_bias(processor)  # {image_pad: -100}

    model = AutoModelForImageTextToText.from_pretrained(checkpoints["qwen2_5_vl"])
    engine = DrawnToVisionStart(model, setup.processor, {tokenizer.eos_token_id})
    with pytest.raises(IndexError) as raised:
        run(setup, engine, [0], EasyR1Bias)
    assert raised.traceback[-1].name == "get_rope_index"  # EasyR1's mrope, reading past the trajectory's end
    batch = run(setup, engine, [0])
    markers = [tokenizer.convert_tokens_to_ids(t) for t in ("<|vision_start|>", "<|vision_end|>", "<|video_pad|>")]
    assert not torch.isin(batch.batch["responses"], torch.tensor(markers)).any()


def test_g_tool_turns_do_not_depend_on_the_workers_chat_template(zoom_group, lfpc_data, checkpoints, tmp_path):
    # the template override (here: the agent's system prompt) reaches EasyR1's driver only; a worker rendering turns
    # with its own template would not continue the dataset's prompt. Ours writes tool turns as explicit text
    from locus_agent.processor import load_processor

    setup, batch = zoom_group
    worker_processor = load_processor(checkpoints["qwen2_5_vl"])  # the worker's: the checkpoint's own template
    tokenizer = setup.processor.tokenizer
    dataset_prompt = tokenizer.decode(setup.dataset[0]["raw_prompt_ids"], skip_special_tokens=False)
    row = setup.dataset.dataset[0]
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": row["problem"][len("<image>") :]}]},
        {"role": "assistant", "content": turn(setup, "Small.", call(view_box(setup, 0, BOXES[0])))},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Zoomed in."}]},
    ]
    rendered = worker_processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert not rendered.startswith(dataset_prompt)

    lines = [
        {"id": "q0", "turns": [turn(setup, "Small.", call(view_box(setup, 0, BOXES[0]))), zoomed_answer(setup)]},
        {"id": "q0", "turns": [turn(setup, "Blue.", "<answer>B</answer>")]},
    ]
    plain = copy.copy(setup)
    plain.processor = worker_processor
    engine = replay_engine(setup, lines, tmp_path / "replay.jsonl")
    with_worker_template = run(plain, engine, [0])
    assert torch.equal(with_worker_template.batch["input_ids"], batch.batch["input_ids"])
    item = setup.dataset[0]
    prompt = item["input_ids"][item["attention_mask"].bool()]
    full = batch.batch["input_ids"][0][batch.batch["attention_mask"][0].bool()]
    assert torch.equal(full[: len(prompt)], prompt)  # every row continues the dataset's own prompt


def test_h_crops_beyond_limit_images_get_an_error_turn(lfpc_data, checkpoints, tmp_path):
    # vLLM refuses a prompt with more images than limit_mm_per_prompt: a turn of two zooms under limit_images 2
    # would kill the run; our tool hands out limit_images - 1 crops and answers further calls with an error text
    from locus_agent.crop_tool import CropTool
    from locus_train.easyr1.config import LfpcConfig, lfpc_errors
    from locus_train.easyr1.rollout import MultiTurnRollout

    overrides = ("worker.rollout.limit_images=2", "lfpc.max_turns=2", *OVERRIDES)
    config = lfpc_config(1, lfpc_data, checkpoints["qwen2_5_vl"], overrides=overrides)
    setup = make_setup(config, checkpoints["qwen2_5_vl"], "qwen2_5_vl")
    two = call(view_box(setup, 0, BOXES[0])) + call(view_box(setup, 0, BOXES[1]), "patch")
    lines = [{"id": "q0", "turns": [turn(setup, "Two.", two), zoomed_answer(setup)]}]
    engine = replay_engine(setup, lines, tmp_path / "replay.jsonl", limit_images=2)

    class Uncapped(MultiTurnRollout):
        def crop_tool(self, original, view, max_crop_tokens):
            return CropTool(original, view, max_crop_tokens=max_crop_tokens, min_pixels=self.processor_min_pixels)

    with pytest.raises(ValueError, match="At most 2 image"):
        run(setup, engine, [0], Uncapped)
    batch = run(setup, engine, [0])
    tokenizer = setup.processor.tokenizer
    assert [len(row["images"]) for row in batch.non_tensor_batch["multi_modal_data"]] == [2, 2]
    text = tokenizer.decode(batch.batch["responses"][0], skip_special_tokens=True)
    assert "no more zooming" in text and text.rstrip().endswith("<answer>A</answer>")
    # preflight's rule: a trajectory of max_turns turns needs the view and one crop per tool turn
    cfg = {
        "data": {"min_pixels": 784, "max_pixels": 50176, "max_response_length": 1024},
        "worker": {
            "rollout": {"limit_images": 2},
            "reward": {"reward_function_kwargs": {"coord_frame": "qwen2_5_vl"}},
        },
    }
    (error,) = lfpc_errors(LfpcConfig(max_turns=5, max_tokens_per_turn=256), cfg)
    assert error.startswith("worker.rollout.limit_images is 2; a trajectory of lfpc.max_turns 5")
    assert lfpc_errors(LfpcConfig(max_turns=2, max_tokens_per_turn=256), cfg) == []
