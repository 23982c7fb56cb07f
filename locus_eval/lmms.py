"""The paper's remaining benchmarks through lmms-eval 0.7.3, with each backbone's generation settings in one table.

lmms-eval applies each task's own ``generation_kwargs`` unless ``--gen_kwargs`` overrides them: 16 new tokens for
``mmerealworld``, ``realworldqa`` and ``ai2d``, 128 for ``pope``, ``hallusion_bench_image`` and ``ocrbench``. A
thinking model (Qwen3-VL-4B-Thinking, MiMo-VL) is cut off mid-reasoning there and scored on its reasoning text. The
runner therefore always passes the paper's budget (greedy, 8,192 new tokens, overridable), the backbone's thinking
switch (``enable_thinking`` for lmms-eval's ``qwen3_vl`` model; MiMo-VL opens ``<think>`` itself), and
``--reasoning_tags [["<think>", "</think>"]]``, so every task scores the text after the last ``</think>`` (the
convention of :func:`locus_reward.parsing.parse_response`; lmms-eval's ``strip_reasoning_tags`` drops closed think
blocks and, when the template pre-opened ``<think>``, keeps what follows the last ``</think>``).

The exact argv of every lmms-eval run is written to ``OUT/command.json`` and ``OUT/command.sh`` before it starts.
lmms-eval itself is imported only in its own process (``python -m lmms_eval``): it pins torch, torchvision and
more, so it usually lives in another environment (``--python``).
"""

import json
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from locus_reward.options import PixelLimits


LMMS_EVAL_VERSION = "0.7.3"
PAPER_MAX_NEW_TOKENS = 8192
REASONING_TAGS = [["<think>", "</think>"]]
PERCEPTION_TASKS = (
    "cv_bench",
    "mmerealworld",
    "pope",
    "hallusion_bench_image",
    "mmstar",
    "realworldqa",
    "ocrbench",
    "ai2d",
)
REASONING_TASKS = ("mathvision_testmini", "mathverse_testmini", "wemath_testmini_reasoning", "logicvista_reasoning")


@dataclass(frozen=True)
class LmmsBackbone:
    """How lmms-eval must run one backbone family."""

    model: str
    """lmms-eval ``--model`` class (MiMo-VL is a Qwen2.5-VL architecture)"""
    thinking: bool
    """the backbone reasons in ``<think>`` before answering, so it needs the long budget and the stripped answer"""
    model_args: dict[str, str] = field(default_factory=dict)
    """extra ``--model_args`` the backbone needs (e.g. the thinking switch of lmms-eval's qwen3_vl class)"""


# keys are the recipe names (config/locus_<backbone>.yaml)
LMMS_BACKBONES = {
    # Qwen2.5-VL-7B-Instruct does not think; a LOCUS checkpoint may write <think> (stripped by the reasoning tags)
    "qwen2_5_vl_7b": LmmsBackbone("qwen2_5_vl", thinking=False),
    # Qwen3-VL-4B-Thinking: its template pre-opens <think>; lmms-eval's qwen3_vl strips up to </think> when told
    "qwen3_vl_4b": LmmsBackbone("qwen3_vl", thinking=True, model_args={"enable_thinking": "True"}),
    # MiMo-VL-7B-RL opens its own <think> (its template does not) and reasons at length
    "mimo_vl_7b": LmmsBackbone("qwen2_5_vl", thinking=True),
}


@dataclass
class LmmsEvalConfig:
    """One lmms-eval evaluation of a merged checkpoint."""

    checkpoint: str
    """merged checkpoint directory (HF format)"""
    backbone: str
    """key of :data:`LMMS_BACKBONES`"""
    out: Path
    """output directory (lmms-eval's ``--output_path``; command.json / command.sh land here)"""
    tasks: tuple[str, ...] = PERCEPTION_TASKS + REASONING_TASKS
    """lmms-eval task names; run in two groups (perception, reasoning) when they are the defaults"""
    max_new_tokens: int = PAPER_MAX_NEW_TOKENS
    """generation budget for every task (the paper: 8,192, greedy)"""
    max_pixels: int = PixelLimits().max_pixels
    """the model class's ``max_pixels`` (EasyR1's default data.max_pixels: full-image inference)"""
    limit: int | None = None
    """lmms-eval ``--limit`` (smoke runs)"""
    python: str = sys.executable
    """interpreter of the environment where lmms-eval is installed"""


def backbone(name: str) -> LmmsBackbone:
    """The settings of a backbone by recipe name; a one-line error lists the known ones."""
    if name not in LMMS_BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; expected one of {', '.join(LMMS_BACKBONES)}")
    return LMMS_BACKBONES[name]


def task_groups(tasks: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The default tasks run as the perception and the reasoning group (one lmms-eval process each)."""
    if set(tasks) == set(PERCEPTION_TASKS + REASONING_TASKS):
        return [PERCEPTION_TASKS, REASONING_TASKS]
    return [tuple(tasks)]


def build_command(config: LmmsEvalConfig, tasks: tuple[str, ...]) -> list[str]:
    """The argv of one ``python -m lmms_eval`` run (flags as lmms-eval 0.7.3's ``parse_eval_args`` defines them)."""
    settings = backbone(config.backbone)
    if "," in str(config.checkpoint):
        # lmms-eval splits --model_args on commas: such a path would arrive cut in two
        raise ValueError(f"checkpoint path {config.checkpoint} contains a comma; lmms-eval cannot read it, rename it")
    model_args = {"pretrained": str(config.checkpoint), "max_pixels": str(config.max_pixels), **settings.model_args}
    # temperature=0: lmms-eval's Qwen classes then set do_sample=False (greedy), whatever the task says
    gen_kwargs = f"max_new_tokens={config.max_new_tokens},temperature=0"
    argv = [config.python, "-m", "lmms_eval", "--model", settings.model]
    argv += ["--model_args", ",".join(f"{k}={v}" for k, v in model_args.items())]
    argv += ["--tasks", ",".join(tasks), "--batch_size", "1", "--gen_kwargs", gen_kwargs]
    argv += ["--reasoning_tags", json.dumps(REASONING_TAGS), "--log_samples", "--output_path", str(config.out)]
    if config.limit is not None:
        argv += ["--limit", str(config.limit)]
    return argv


def commands(config: LmmsEvalConfig) -> list[list[str]]:
    return [build_command(config, group) for group in task_groups(config.tasks)]


def save_commands(config: LmmsEvalConfig, argvs: list[list[str]]) -> None:
    """``command.json`` (argv lists and the settings) and ``command.sh`` (the same, ready to paste) in ``out``."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = backbone(config.backbone)
    record = {
        "lmms_eval_version": LMMS_EVAL_VERSION,
        "backbone": config.backbone,
        "thinking": settings.thinking,
        "max_new_tokens": config.max_new_tokens,
        "decoding": "greedy",
        "answer": "text after the last </think> (lmms-eval --reasoning_tags)",
        "commands": argvs,
    }
    (out / "command.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    lines = ["#!/usr/bin/env bash", "set -euo pipefail"] + [shlex.join(argv) for argv in argvs]
    (out / "command.sh").write_text("\n".join(lines) + "\n", encoding="utf-8")


def run(config: LmmsEvalConfig, dry_run: bool = False) -> list[list[str]]:
    """Save the commands, then run them one after the other (stop at the first failure)."""
    argvs = commands(config)
    save_commands(config, argvs)
    if dry_run:
        return argvs
    for argv in argvs:
        done = subprocess.run(argv, check=False)
        if done.returncode != 0:
            raise ValueError(
                f"lmms-eval exited with {done.returncode}: {shlex.join(argv)} (is lmms-eval=={LMMS_EVAL_VERSION} "
                f"installed for {config.python}? pip install -e '.[lmms-eval]')"
            )
    return argvs
