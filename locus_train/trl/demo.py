"""The laptop demo and CI's learning check: GRPO with the LOCUS reward visibly raising a tiny model's IoU on a CPU.

    python -m locus_train.trl.demo --config config/trl/locus_tiny_cpu_demo.yaml --out demo/trl   # or: make demo-train

The dataset is the LOCUS row layout (``problem`` with two ``<image>`` markers, ``images`` = [full image, cue],
``answer`` = ground-truth JSON) where the cue is one quadrant of a 112 x 112 noise image, the bottom-right quadrant
``BIAS`` of the time. A tiny random model is first warm-started with TRL's SFTTrainer on answers naming *random*
quadrants, so it learns the answer format but no preference; then ``locus-train trl`` runs GRPO with the LOCUS
reward. Always answering bottom-right scores IoU ~0.7, any single other quadrant ~0.1, a uniform choice ~0.25, so a
held-out greedy IoU well above 0.5 can only come from the reward.

What it proves: the LOCUS reward, TRL's advantages and the update move the policy toward higher IoU, through the
real data path (rows, prompt rendering, both images, the processor's frame) and the real ``locus-train trl`` code.
What it does not prove: visual search skill. The model learns a label bias, not to find the cue.
"""

import argparse
import dataclasses
import io
import json
import random
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from locus_agent.processor import load_processor
from locus_data.config import SPLITS, split_path
from locus_data.errors import UserError
from locus_data.rows import read_batches
from locus_data.schema import ANSWER, IMAGES, PROBLEM
from locus_reward.frames import to_model
from locus_reward.parsing import format_answer
from locus_train.tiny_model import save_checkpoint
from locus_train.trl.config import RewardConfig, load_config, reward_options
from locus_train.trl.data import PROMPT, to_trl_row
from locus_train.trl.rewards import make_reward_func
from locus_train.trl.train import run


SIDE = 112
"""full-image side: a multiple of 28 and 32 inside the tiny processors' limits, so every frame is exact"""
BIAS = 0.7
QUADRANTS = [(0, 0), (1, 0), (0, 1), (1, 1)]  # (column, row); (1, 1) is bottom-right
PROBLEM_TEXT = "<image>\nFull image.\n<image>\nCue. Where is the cue?"
FORMAT_PROMPT = "{{ content | trim }}"
"""short on purpose: byte-level tiny tokenizers make every character a token, and CPU time is the budget"""


def quadrant_box(quadrant: tuple[int, int]) -> list[float]:
    half = SIDE / 2
    x, y = quadrant
    return [x * half, y * half, (x + 1) * half, (y + 1) * half]


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_quadrant_split(path: Path, rows: int, seed: int) -> Path:
    """A parquet split of ``rows`` quadrant examples (bottom-right with probability ``BIAS``)."""
    rng = random.Random(seed)
    problems, images, answers = [], [], []
    for i in range(rows):
        quadrant = (1, 1) if rng.random() < BIAS else rng.choice(QUADRANTS[:3])
        full = Image.frombytes("RGB", (SIDE, SIDE), rng.randbytes(SIDE * SIDE * 3))
        box = quadrant_box(quadrant)
        cue = full.crop(tuple(int(v) for v in box))
        images.append([{"bytes": _png(full), "path": f"{i}_full.png"}, {"bytes": _png(cue), "path": f"{i}_cue.png"}])
        problems.append(PROBLEM_TEXT)
        answers.append(json.dumps({"box": box, "width": SIDE, "height": SIDE}))
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({PROBLEM: problems, IMAGES: images, ANSWER: answers}), path)
    return path


def answer_text(quadrant: tuple[int, int], reward: RewardConfig) -> str:
    """The target a model should write for a quadrant, in its frame (the tiny processors show 112 x 112 as is)."""
    options = reward_options(reward)
    box = to_model(tuple(quadrant_box(quadrant)), SIDE, SIDE, options.coord_frame, **options.pixel_kwargs)
    answer = f"<answer>{format_answer(box)}</answer>"
    return f"</think>{answer}" if options.think_prefilled else f"<think></think>{answer}"


def sft_warm_start(
    checkpoint: Path,
    out: Path,
    reward: RewardConfig,
    rows: int = 256,
    steps: int = 40,
    seed: int = 0,
) -> Path:
    """TRL SFTTrainer on ``rows`` quadrant prompts with *random* quadrant labels: the model learns the answer format
    and writes quadrant boxes, but no preference for the bottom-right one (that must come from GRPO)."""
    import datasets  # heavy (torch, trl): only when the demo trains
    from trl import SFTConfig, SFTTrainer

    rng = random.Random(seed)
    split = write_quadrant_split(out / "sft.parquet", rows, seed + 1000)
    examples = []
    for row in next(read_batches(split, [PROBLEM, IMAGES, ANSWER], batch_rows=None)).to_pylist():
        trl_row = to_trl_row(row[PROBLEM], row[IMAGES], row[ANSWER], FORMAT_PROMPT)
        target = answer_text(rng.choice(QUADRANTS), reward)
        examples.append(
            {**trl_row, "completion": [{"role": "assistant", "content": [{"type": "text", "text": target}]}]}
        )
    processor = load_processor(checkpoint)
    args = SFTConfig(
        output_dir=str(out / "sft_run"),
        max_steps=steps,
        per_device_train_batch_size=16,
        learning_rate=5e-3,
        lr_scheduler_type="constant",
        logging_steps=10,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=False,
        seed=seed,
        max_length=None,
        disable_tqdm=True,
    )
    trainer = SFTTrainer(
        model=str(checkpoint),
        args=args,
        train_dataset=datasets.Dataset.from_list(examples),
        processing_class=processor,
    )
    trainer.train()
    trainer.save_model(str(out / "warm"))
    return out / "warm"


def greedy_iou(checkpoint: Path, split: Path, reward: RewardConfig, rows: int = 32) -> float:
    """Mean IoU of greedy answers on the first ``rows`` of a split, scored by the LOCUS reward in the TRL frame."""
    import torch  # heavy: only when the demo evaluates a model
    import transformers

    processor = load_processor(checkpoint)
    model = transformers.AutoModelForImageTextToText.from_pretrained(checkpoint, dtype=torch.float32)
    model.eval()
    score = make_reward_func(dataclasses.asdict(reward), processor)
    ious: list[float] = []
    table = next(read_batches(split, [PROBLEM, IMAGES, ANSWER], limit=rows, batch_rows=None)).to_pylist()
    for start in range(0, len(table), 16):
        batch = [to_trl_row(r[PROBLEM], r[IMAGES], r[ANSWER], FORMAT_PROMPT) for r in table[start : start + 16]]
        texts = [processor.apply_chat_template(r[PROMPT], add_generation_prompt=True) for r in batch]
        inputs = processor(
            text=texts,
            images=[i for r in batch for i in r[IMAGES]],
            return_tensors="pt",
            padding=True,
            padding_side="left",
        )
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=56, do_sample=False)
        texts = processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        logged: dict[str, float] = {}
        score(texts, [r[ANSWER] for r in batch], log_metric=logged.__setitem__)
        ious.extend([logged["cue_search/iou"]] * len(batch))
    return sum(ious) / len(ious)


def grpo_overrides(warm: Path, train: Path, held_out: Path, work: Path, steps: int = 40) -> list[str]:
    """``locus-train trl`` overrides of the CPU demo recipe for the quadrant data (what the demo and the test run)."""
    (work / "format.jinja").write_text(FORMAT_PROMPT, encoding="utf-8")
    return [
        f"model.path={warm}",
        "data.dir=null",
        f"data.train_files={train}",
        f"data.val_files={held_out}",
        f"data.format_prompt={work / 'format.jinja'}",
        f"data.cache_dir={work / 'datasets_cache'}",
        f"grpo.output_dir={work / 'grpo'}",
        f"grpo.max_steps={steps}",
        "grpo.learning_rate=3e-4",
        "grpo.lr_scheduler_type=constant",
        "grpo.per_device_train_batch_size=32",  # 4 prompts x 8 completions per step
        "grpo.num_generations=8",
        "grpo.max_completion_length=56",  # '<think></think><answer>[56, 56, 112, 112]</answer>' is 50 byte tokens
        "grpo.eval_strategy=no",
        "grpo.logging_steps=2",
        "grpo.disable_tqdm=true",
    ]


def run_demo(config: Path, work: Path, steps: int = 40, checkpoint: Path | None = None) -> dict[str, float]:
    """Warm start, held-out greedy IoU, GRPO, held-out greedy IoU again; writes ``work/summary.json``."""
    start = time.monotonic()
    work.mkdir(parents=True, exist_ok=True)
    if checkpoint is None:
        checkpoint = save_checkpoint(work / "tiny_qwen2_5_vl", "qwen2_5_vl")
    train_split, val_split = SPLITS
    train = write_quadrant_split(split_path(work, train_split), 600, seed=1)
    held_out = write_quadrant_split(split_path(work, val_split), 32, seed=2)
    # the recipe's reward options decide the warm-start targets and the held-out score too
    cfg = load_config(config, grpo_overrides(work / "sft" / "warm", train, held_out, work, steps))
    warm = sft_warm_start(checkpoint, work / "sft", cfg.reward, steps=60)
    before = greedy_iou(warm, held_out, cfg.reward)
    trainer = run(cfg)
    after = greedy_iou(work / "grpo", held_out, cfg.reward)
    train_iou = [h["cue_search/iou"] for h in trainer.state.log_history if "cue_search/iou" in h]
    summary = {
        "held_out_greedy_iou_before": round(before, 4),
        "held_out_greedy_iou_after": round(after, 4),
        "train_iou_first_log": round(train_iou[0], 4),
        "train_iou_last_log": round(train_iou[-1], 4),
        "seconds": round(time.monotonic() - start, 1),
    }
    (work / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m locus_train.trl.demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", type=Path, required=True, help="the CPU demo recipe, config/trl/locus_tiny_cpu_demo.yaml"
    )
    parser.add_argument("--out", type=Path, required=True, help="work directory (data, checkpoints, grpo/ run)")
    parser.add_argument(
        "--steps", type=int, default=40, help="GRPO steps (default 40; the demo takes ~90 s on 2 cores)"
    )
    args = parser.parse_args(argv)
    try:
        summary = run_demo(args.config, args.out, args.steps)
    except UserError as err:
        print(f"locus-train demo: error: {err}", file=sys.stderr)
        return 2
    before, after = summary["held_out_greedy_iou_before"], summary["held_out_greedy_iou_after"]
    print(
        f"held-out greedy IoU {before:.3f} -> {after:.3f}"
        f" (train IoU {summary['train_iou_first_log']:.3f} -> {summary['train_iou_last_log']:.3f}) in "
        f"{summary['seconds']:.0f} s; the curve: locus-eval plot-training {args.out / 'grpo'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
