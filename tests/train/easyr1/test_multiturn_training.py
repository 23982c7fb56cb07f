"""A multi-turn batch trains through EasyR1's unchanged reward, GRPO and actor code (issue 19, Done when).

The group: q0's first rollout zooms on the mark and answers right (A); its second answers wrong (B) without a tool.
"""

import copy

import pytest
import torch

from tests.testing_utils import require_easyr1

from .lfpc_rows import BOXES
from .lfpc_setup import call, lfpc_config, make_setup, replay_engine, run, turn, view_box, worker


pytestmark = require_easyr1

# a reference model and a KL loss, so the reference log-probs are part of the loss too
OVERRIDES = (
    "lfpc.max_tokens_per_turn=400",
    "data.max_response_length=1024",
    "algorithm.disable_kl=false",
    "algorithm.use_kl_loss=true",
    "algorithm.kl_penalty=low_var_kl",
    "algorithm.kl_coef=0.1",
    "data.rollout_batch_size=1",  # one group: one prompt, two rollouts, one update
    "worker.actor.global_batch_size=1",
    "worker.actor.micro_batch_size_per_device_for_experience=2",
)


@pytest.fixture
def gloo_group(tmp_path):
    import torch.distributed as dist

    # DataParallelPPOActor.update_policy all-reduces the token count: a one-process group serves it on CPU
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'gloo'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def trained_group(lfpc_data, checkpoints, tmp_path_factory):
    """(setup, model, batch with rewards, old/ref log-probs and GRPO advantages, the reward's metrics)."""
    from transformers import AutoModelForImageTextToText
    from verl.trainer.ray_trainer import compute_advantage
    from verl.workers.actor.dp_actor import DataParallelPPOActor

    from locus_train.easyr1.reward import MultiTurnRewardManager

    config = lfpc_config(1, lfpc_data, checkpoints["qwen2_5_vl"], overrides=OVERRIDES)
    setup = make_setup(config, checkpoints["qwen2_5_vl"], "qwen2_5_vl")
    zoom = turn(setup, "Small.", call(view_box(setup, 0, BOXES[0])))
    lines = [
        {"id": "q0", "turns": [zoom, turn(setup, "Red.", "<answer>A</answer>")]},
        {"id": "q0", "turns": [turn(setup, "Blue.", "<answer>B</answer>")]},
    ]
    batch = run(setup, replay_engine(setup, lines, tmp_path_factory.mktemp("g") / "replay.jsonl"), [0])
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_pretrained(checkpoints["qwen2_5_vl"], dtype=torch.float32)
    manager = MultiTurnRewardManager(config.worker.reward, setup.processor.tokenizer)
    scores, metrics = manager.compute_reward(batch)
    worker(setup.processor)._process_multi_modal_inputs(batch)
    batch.meta_info["temperature"] = config.worker.rollout.temperature
    actor_config = config.worker.actor
    actor_config.global_batch_size_per_device = actor_config.global_batch_size * config.worker.rollout.n
    batch.batch["old_log_probs"] = DataParallelPPOActor(actor_config, model).compute_log_prob(batch)
    batch.batch["ref_log_probs"] = DataParallelPPOActor(config.worker.ref, copy.deepcopy(model)).compute_log_prob(
        batch
    )
    batch.batch["token_level_scores"] = batch.batch["token_level_rewards"] = scores
    batch = compute_advantage(batch, adv_estimator=config.algorithm.adv_estimator)
    return setup, model, batch, metrics


def update(setup, model, batch, optimizer: str = "adamw"):
    """EasyR1's update_policy on a copy of ``model``: (its metrics, the copy after the update)."""
    from verl.workers.actor.dp_actor import DataParallelPPOActor

    model = copy.deepcopy(model)
    optim = setup.config.worker.actor.optim
    if optimizer == "sgd":  # the parameter change is then -lr x the (clipped) gradient itself
        torch_optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    else:
        torch_optimizer = torch.optim.AdamW(
            model.parameters(), lr=optim.lr, betas=optim.betas, weight_decay=optim.weight_decay
        )
    metrics = DataParallelPPOActor(setup.config.worker.actor, model, torch_optimizer).update_policy(batch)
    return metrics, model


def test_a_replayed_group_gets_the_rewards_of_its_texts_and_changes_the_parameters(trained_group, gloo_group):
    # right with a crop vs wrong: the reward function's own scores for the decoded trajectories, a positive and a
    # negative advantage on the policy's tokens only, and an update that moves every weight
    from locus_reward.lfpc import compute_score_stage1

    setup, model, batch, metrics = trained_group
    tokenizer = setup.processor.tokenizer
    length = batch.batch["responses"].size(-1)
    texts = []
    for row in range(2):
        real = batch.batch["attention_mask"][row, -length:].bool()
        texts.append(tokenizer.decode(batch.batch["responses"][row][real], skip_special_tokens=True))
    truth = batch.non_tensor_batch["ground_truth"][0]
    items = [{"response": text, "response_length": 0, "ground_truth": truth} for text in texts]
    expected = compute_score_stage1(items, **setup.config.worker.reward.reward_function_kwargs)
    assert metrics["overall"] == pytest.approx([score["overall"] for score in expected])
    assert metrics["overall"] == pytest.approx([2.2, 0.2]) and metrics["tool"] == [1.0, 0.0]
    advantages, mask = batch.batch["advantages"], batch.batch["response_mask"]
    assert (advantages[0][mask[0].bool()] > 0).all() and (advantages[1][mask[1].bool()] < 0).all()
    assert (advantages[~mask.bool()] == 0).all()  # tool turns and padding carry no advantage

    before = dict(model.named_parameters())
    update_metrics, updated = update(setup, model, batch)
    assert update_metrics["actor/grad_norm"][0] > 0 and all(
        torch.isfinite(torch.tensor(v)).all() for v in update_metrics.values()
    )
    changed = [name for name, p in updated.named_parameters() if not torch.equal(p, before[name])]
    assert len(changed) == len(before)


def test_b_tool_token_log_probs_change_neither_the_loss_nor_the_gradient(trained_group, gloo_group):
    # the loss reads old and reference log-probs through response_mask: scrambling them on the tool's tokens leaves
    # the loss, the KL term and every parameter's gradient (SGD: the update is the gradient) exactly as they were;
    # scrambling one policy token's changes them, so this comparison can fail
    setup, model, batch, _ = trained_group
    length = batch.batch["responses"].size(-1)
    real = batch.batch["attention_mask"][:, -length:].bool()
    policy = batch.batch["response_mask"].bool()
    tool = real & ~policy
    assert tool[0].sum() > 50  # the zooming rollout's tool turn: its text and the crop's image tokens

    def scrambled(where):
        copy_ = batch[list(range(len(batch)))]
        for key in ("old_log_probs", "ref_log_probs"):
            values = copy_.batch[key].clone()
            values[where] = -torch.rand(int(where.sum()), generator=torch.Generator().manual_seed(1)) * 10
            copy_.batch[key] = values
        return copy_

    base_metrics, base = update(setup, model, batch, "sgd")
    tool_metrics, with_tool = update(setup, model, scrambled(tool), "sgd")
    one_policy_token = torch.zeros_like(policy)
    one_policy_token[0, int(policy[0].nonzero()[3])] = True
    policy_metrics, with_policy = update(setup, model, scrambled(one_policy_token), "sgd")

    for key in ("actor/pg_loss", "actor/kl_loss", "actor/grad_norm"):
        assert tool_metrics[key] == base_metrics[key]
    assert all(torch.equal(p, q) for p, q in zip(base.parameters(), with_tool.parameters()))
    assert policy_metrics["actor/pg_loss"] != base_metrics["actor/pg_loss"]
    assert not all(torch.equal(p, q) for p, q in zip(base.parameters(), with_policy.parameters()))
