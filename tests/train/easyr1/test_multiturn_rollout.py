"""The crop-tool rollout's batch, checked against what EasyR1's actor and the model take (Qwen2.5-VL and Qwen3-VL).

One replayed group per backbone: question q0's first rollout zooms twice in one turn, once more in the next, then
answers; its second answers at once. q1's two rollouts zoom once each and answer. Everything around the replayed
turns is the real code: EasyR1's dataset and batch handling, our rollout, the crop tool, the tiny model's processor.
"""

from math import prod

import pytest
import torch

from locus_train.recipe import recipe_root
from tests.testing_utils import require_easyr1

from .lfpc_rows import BOXES
from .lfpc_setup import (
    RECIPES,
    call,
    generation_batch,
    lfpc_config,
    make_setup,
    replay_engine,
    run,
    turn,
    view_box,
    views,
)


pytestmark = require_easyr1

REGION = [400.0, 300.0, 500.0, 380.0]  # a third region of q0's original, zoomed in the second turn
OVERRIDES = (
    "worker.rollout.limit_images=4",  # the view and q0's three crops
    "lfpc.max_tokens_per_turn=400",  # two calls in one turn are ~250 byte tokens
    "data.max_response_length=1536",
)


def group_lines(setup) -> list[dict]:
    mark, patch = BOXES
    q0 = [
        turn(setup, "Small.", call(view_box(setup, 0, mark)) + call(view_box(setup, 0, patch), "patch")),
        turn(setup, "More.", call(view_box(setup, 0, REGION), "corner")),
        turn(setup, "Red.", "<answer>A</answer>"),
    ]
    q1 = [turn(setup, "Look.", call(view_box(setup, 1, patch), "patch")), turn(setup, "Red.", "<answer>A</answer>")]
    return [
        {"id": "q0", "turns": q0},
        {"id": "q0", "turns": [turn(setup, "Blue.", "<answer>B</answer>")]},
        {"id": "q1", "turns": q1},
    ]


@pytest.fixture(scope="module", params=["qwen2_5_vl", "qwen3_vl_thinking"])
def group(request, lfpc_data, checkpoints, tmp_path_factory):
    """(setup, the trainer's batch after the rollout) for prompts q0 and q1, two rollouts each."""
    backbone = request.param
    config = lfpc_config(1, lfpc_data, checkpoints[backbone], backbone, OVERRIDES)
    setup = make_setup(config, checkpoints[backbone], backbone)
    engine = replay_engine(setup, group_lines(setup), tmp_path_factory.mktemp("replay") / "replay.jsonl")
    engine.seen = []
    generate = engine.generate

    def recording(prompts, sampling_params, **kwargs):
        engine.seen += [
            dict(prompt, key=request.key, sample=request.sample)
            for prompt, request in zip(prompts, kwargs["requests"])
        ]
        return generate(prompts, sampling_params, **kwargs)

    engine.generate = recording
    return setup, run(setup, engine, [0, 1]), engine


def real(batch, row: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(real response ids, their policy mask) of a row."""
    response_length = batch.batch["responses"].size(-1)
    keep = batch.batch["attention_mask"][row, -response_length:].bool()
    return batch.batch["responses"][row][keep], batch.batch["response_mask"][row][keep]


def test_easyr1_renders_the_agent_prompt(group):
    # the dataset's prompt (system prompt through our chat template) is the one locus-eval agent starts from
    from locus_agent.loop import Episode
    from locus_data.images import open_image
    from locus_train.easyr1.config import system_prompt_text

    setup, _, _ = group
    lfpc = setup.config.worker.rollout.lfpc
    system = system_prompt_text(lfpc, setup.coord_frame, recipe_root(RECIPES[1]))
    for index in range(2):
        row = setup.dataset.dataset[index]
        entry = row["images"][0]
        view = views(setup, entry)
        question = row["problem"].removeprefix("<image>")
        episode = Episode.start(row["id"], question, view, None, processor=setup.processor, system=system)
        raw_ids = setup.dataset[index]["raw_prompt_ids"]
        assert setup.processor.tokenizer.decode(raw_ids, skip_special_tokens=False) == episode.segments[0].text
        assert episode.generation_prefix == ("<think>\n" if setup.think_prefilled else "")
        assert open_image(entry).size == (320, 240)  # the view the model sees, not the original


def test_images_in_multi_modal_data_equal_the_crops_the_tool_made_in_order(group, tmp_path):
    # the actor processes exactly the crops the tool cut, in the order their placeholders appear
    from locus_agent.crop_tool import CropTool
    from locus_agent.processor import pixel_limits
    from locus_data.images import open_image
    from locus_reward.tool_calls import parse_turn
    from locus_train.easyr1.config import crop_tokens
    from tests.agent.conftest import pixel_position

    setup, batch, _ = group
    lines = group_lines(setup)
    expected_counts = [4, 1, 2, 2]  # q0 zoom x3 / answers at once; q1 zooms once in each rollout
    assert [len(batch.non_tensor_batch["multi_modal_data"][row]["images"]) for row in range(4)] == expected_counts
    low, high = pixel_limits(setup.processor)
    for row, line in ((0, lines[0]), (2, lines[2]), (3, lines[2])):
        index = row // 2
        entry = setup.dataset.dataset[index]["images"][0]
        images = batch.non_tensor_batch["multi_modal_data"][row]["images"]
        assert images[0] == entry  # the view struct itself, its path to the original included
        original = open_image(entry["path"]).convert("RGB")
        cap = crop_tokens(setup.coord_frame, setup.config.data.max_pixels, high)
        tool = CropTool(original, views(setup, entry), max_crop_tokens=cap, min_pixels=low)
        calls = [c for text in line["turns"] for c in parse_turn(text, think_prefilled=setup.think_prefilled).calls]
        results = [tool(c) for c in calls]
        assert len(images) - 1 == len(results)
        for image, result in zip(images[1:], results):
            assert image.size == result.image.size and image.tobytes() == result.image.tobytes()
            # cut from the original at its own resolution: the crop's pixels name their original coordinates
            x1, y1, x2, y2 = result.crop_box
            assert image.size == (x2 - x1, y2 - y1)
            assert pixel_position(image.getpixel((0, 0))) == (x1, y1)
            assert pixel_position(image.getpixel((image.width - 1, image.height - 1))) == (x2 - 1, y2 - 1)


def test_position_ids_are_get_rope_index_over_the_whole_sequence(group, checkpoints):
    # rows 1-3 are the model's own mrope positions of prompt + every turn; row 0 one arange over the real tokens
    from transformers import AutoModelForImageTextToText

    setup, batch, _ = group
    model = AutoModelForImageTextToText.from_pretrained(checkpoints[setup.backbone])
    for row in range(len(batch)):
        mask = batch.batch["attention_mask"][row].bool()
        grids = torch.tensor(batch_grids(setup, batch.non_tensor_batch["multi_modal_data"][row]["images"]))
        ids = batch.batch["input_ids"][row : row + 1][:, mask]
        expected, _ = model.model.get_rope_index(ids, grids, None, attention_mask=torch.ones_like(ids))
        positions = batch.batch["position_ids"][row]
        assert torch.equal(positions[1:, mask], expected[:, 0])
        assert torch.equal(positions[0, mask], torch.arange(int(mask.sum())))
    # the crops' rows of q0's first rollout really are image positions (not a text arange continued)
    assert not torch.equal(batch.batch["position_ids"][0, 1], batch.batch["position_ids"][0, 0])


def test_token_streams_and_masks(group):
    # the contract of the rollout's output, row by row
    setup, batch, engine = group
    tokenizer = setup.processor.tokenizer
    image_pad = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    merge = setup.processor.image_processor.merge_size**2
    response_length = setup.config.data.max_response_length
    assert batch.batch["responses"].shape == (4, response_length)
    assert (batch.batch["response_mask"] <= batch.batch["attention_mask"][:, -response_length:]).all()
    for row in range(len(batch)):
        ids, mask = real(batch, row)
        # what the policy is trained on never holds the tool's text; what it wrote is its turns, each closed
        policy = tokenizer.decode(ids[mask.bool()], skip_special_tokens=False)
        assert "<tool_response>" not in policy and "Zoomed in" not in policy
        assert ids[-1] == tokenizer.eos_token_id and mask[-1] == 1  # ends on a model turn's <|im_end|>
        # every image's pad run is whole: as many pads as its grid has tokens, in order
        full = batch.batch["input_ids"][row][batch.batch["attention_mask"][row].bool()].tolist()
        runs, count = [], 0
        for token in full + [-1]:
            if token == image_pad:
                count += 1
            elif count:
                runs.append(count)
                count = 0
        images = batch.non_tensor_batch["multi_modal_data"][row]["images"]
        grids = batch_grids(setup, images)
        assert runs == [t * h * w // merge for t, h, w in grids]
    # the tool's tokens are counted, and only q0's zooming rollout and q1's have any
    tool_tokens = [float(v) for v in batch.non_tensor_batch["rollout_tool_tokens"]]
    assert tool_tokens[1] == 0 and min(tool_tokens[0], tool_tokens[2], tool_tokens[3]) > 0
    for row in range(4):
        ids, mask = real(batch, row)
        assert tool_tokens[row] == len(ids) - int(mask.sum())
    assert [float(v) for v in batch.non_tensor_batch["rollout_crops"]] == [3.0, 0.0, 1.0, 1.0]
    assert [float(v) for v in batch.non_tensor_batch["rollout_turns"]] == [3.0, 1.0, 2.0, 2.0]
    # what vLLM was sent each turn (one pad per image), expanded by its images' grids, is the sequence the actor
    # scores up to that turn: the two streams never drift apart
    for prompt in engine.seen:
        row = 2 * int(prompt["key"]) + prompt["sample"]
        grids = iter(batch_grids(setup, prompt["multi_modal_data"]["image"]))
        expanded = []
        for token in prompt["prompt_token_ids"]:
            expanded += [token] * (prod(next(grids)) // merge) if token == image_pad else [token]
        full = batch.batch["input_ids"][row][batch.batch["attention_mask"][row].bool()].tolist()
        assert full[: len(expanded)] == expanded
    assert len(engine.seen) == 3 + 1 + 2 + 2  # one request per assistant turn


def batch_grids(setup, images) -> list[list[int]]:
    from verl.utils.dataset import process_image

    data = setup.config.data
    processed = [process_image(image, data.min_pixels, data.max_pixels) for image in images]
    return setup.processor.image_processor(images=processed, return_tensors="pt")["image_grid_thw"].tolist()


def test_crops_are_fixed_points_of_easyr1_and_the_processor(group):
    # vLLM's grid, the actor's grid and the tool's token count agree because nothing resizes a crop again
    from verl.utils.dataset import process_image

    setup, batch, _ = group
    data = setup.config.data
    patch = setup.processor.image_processor.patch_size
    for row in range(len(batch)):
        for crop in batch.non_tensor_batch["multi_modal_data"][row]["images"][1:]:
            assert process_image(crop, data.min_pixels, data.max_pixels).size == crop.size
            ((_, h, w),) = batch_grids(setup, [crop])
            assert (w * patch, h * patch) == crop.size
    crops = [len(batch.non_tensor_batch["multi_modal_data"][row]["images"]) - 1 for row in range(4)]
    assert [float(v) for v in batch.non_tensor_batch["rollout_crops"]] == crops


def test_a_tool_turn_that_does_not_fit_is_left_out(lfpc_data, checkpoints, tmp_path):
    # with room for the first turn but not its tool turn, the trajectory ends after the model turn, inside budget
    config = lfpc_config(1, lfpc_data, checkpoints["qwen2_5_vl"], overrides=("data.max_response_length=300",))
    setup = make_setup(config, checkpoints["qwen2_5_vl"], "qwen2_5_vl")
    first = turn(setup, "Small.", call(view_box(setup, 0, BOXES[1]), "patch"))
    engine = replay_engine(
        setup, [{"id": "q0", "turns": [first, turn(setup, "Red.", "<answer>A</answer>")]}], tmp_path / "r"
    )
    batch = run(setup, engine, [0])
    ids, mask = real(batch, 0)
    text = setup.processor.tokenizer.decode(ids, skip_special_tokens=False)
    assert mask.all() and text.endswith("</tool_call><|im_end|>") and "<tool_response>" not in text
    assert len(batch.non_tensor_batch["multi_modal_data"][0]["images"]) == 1


def test_adopt_keeps_easyr1s_engine_and_sampling(lfpc_data, checkpoints, tmp_path):
    # the worker builds EasyR1's rollout (vLLM engine, sampling params) and adopts it: both are kept
    from verl.workers.rollout.vllm_rollout_spmd import vLLMRollout

    from locus_train.easyr1.engine import CPUSamplingParams
    from locus_train.easyr1.rollout import MultiTurnRollout

    config = lfpc_config(1, lfpc_data, checkpoints["qwen2_5_vl"])
    setup = make_setup(config, checkpoints["qwen2_5_vl"], "qwen2_5_vl")
    engine = replay_engine(setup, [{"id": "q0", "turns": [turn(setup, "Red.", "<answer>A</answer>")]}], tmp_path / "r")
    stock = vLLMRollout.__new__(vLLMRollout)
    stock.rank, stock.config, stock.inference_engine = 0, config.worker.rollout, engine
    stock.pad_token_id, stock.use_tqdm, stock.lora_kwargs = setup.processor.tokenizer.pad_token_id, False, {}
    stock.return_video_metadata = False
    stock.sampling_params = CPUSamplingParams(n=2, temperature=0.7, max_tokens=7)
    adopted = MultiTurnRollout.adopt(stock, setup.processor, config.worker.rollout.lfpc, "qwen2_5_vl")
    assert adopted.inference_engine is engine and adopted.sampling_params is stock.sampling_params
    _, generation = generation_batch(setup, [0])
    output = adopted.generate_sequences(generation)
    assert len(output) == 2 and output.batch["responses"].shape[1] == config.data.max_response_length
