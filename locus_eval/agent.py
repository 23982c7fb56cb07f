"""``locus-eval agent``: run a crop-tool agent (an LFPC or DeepEyes checkpoint) on V*, HR-Bench or a VQA manifest.

Per question the original image is decoded once; the model sees it at ``--max-visual-tokens`` (the processor's own
``smart_resize`` with ``max_pixels = N * f * f``, f = 28 Qwen2.5-VL / 32 Qwen3-VL, and the processor's
``min_pixels``; no EasyR1 pre-resize: :meth:`locus_agent.view.View.at_budget`), calls the crop tool
(:class:`locus_agent.crop_tool.CropTool`: crops cut from the original, up to ``--max-crop-visual-tokens``) and
answers; :func:`locus_agent.loop.run_episodes` runs ``--batch-size`` questions at a time, turn by turn, greedily.

The run directory (``--out``):

* ``trajectories.jsonl``: one line per question, appended and fsynced per batch, so a killed run resumes -- a rerun
  skips every id already there (a torn last line is dropped) and refuses other settings than the saved
  ``generation.json`` (model, data, backend, replay file and its hash, frame, budgets, turns, crop mode, seed,
  ``--save-crops``). A line: ``index`` and ``id`` (bench's), ``question``, ``choices``, ``answer``, ``prediction``
  (the answer block's text, None without one), ``choice``, ``correct``, ``end_reason``, ``turns`` (text, tokens,
  seconds and calls: ``box_view``, ``box_orig``, ``crop_box``, ``crop_size``, ``visual_tokens``, ``error``,
  ``label``, and per crop ``iou``, ``overlap``, ``bbox_ratio``, ``crop_file``), ``tool_calls``, ``image_size``,
  ``view_size``, ``view_tokens``, ``gt_boxes``, ``response_tokens`` and ``seconds`` (its share of the batched
  generation plus its own decode, view and tool time).
* ``metrics.json`` and ``table.md`` (:mod:`locus_eval.agent_metrics`), written atomically after every run.
* ``crops/`` (``--save-crops``): every image handed to the model after a call, as cut (before the processor's
  resize), named by :func:`crop_file_name`.
* ``trajectories.png``: the first episodes drawn (:mod:`locus_eval.agent_picture`).
"""

import hashlib
import json
import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tqdm.auto import tqdm

from locus_agent.backends import BACKENDS, load_backend
from locus_agent.backends.replay import read_replay
from locus_agent.crop_tool import CROP_MODES, DEFAULT_MAX_CROP_TOKENS, CropTool
from locus_agent.loop import Episode, LoopConfig, run_episodes
from locus_agent.processor import checkpoint_coord_frame, load_processor, pixel_limits, resolve_model
from locus_agent.view import AGENT_FRAMES, View
from locus_data.errors import UserError
from locus_data.images import open_image
from locus_eval.agent_metrics import agent_metrics, agent_table, crop_scores, score_answer
from locus_eval.agent_picture import draw_trajectories
from locus_eval.agent_questions import Questions, load_questions, question_text
from locus_eval.benchmarks import Item, protocol_note
from locus_eval.predictions import PredictionWriter, check_settings, read_predictions
from locus_reward import frames
from locus_reward.tool_calls import MAX_CALLS_PER_TURN


TRAJECTORIES_FILE, METRICS_FILE, TABLE_FILE = "trajectories.jsonl", "metrics.json", "table.md"
CROPS_DIR, PICTURE_FILE = "crops", "trajectories.png"


@dataclass(frozen=True)
class AgentConfig:
    """One ``locus-eval agent`` run (the CLI's flags)."""

    benchmark: str
    """vstar, hrbench or manifest"""
    data: Path
    """V* folder or test_questions.jsonl, HR-Bench TSV, or VQA manifest"""
    out: Path
    """run directory (resumed when it exists)"""
    backend: str = "vllm"
    """hf, vllm, openai or replay"""
    model: str | None = None
    """checkpoint directory or hub id (hf, vllm; replay: optional, for its chat template and tokenizer); the served
    model name (openai)"""
    replay: Path | None = None
    """recorded turns, JSONL of ``{"id", "turns"}`` (replay)"""
    base_url: str | None = None
    """OpenAI-compatible API root, e.g. http://localhost:8000/v1 (openai)"""
    coord_frame: str | None = None
    """qwen2_5_vl or qwen3_vl; None: the checkpoint's config.json ``model_type``"""
    max_visual_tokens: int = 1024
    """visual tokens of the full image (the paper: 1,024 and 16,384)"""
    max_crop_visual_tokens: int = DEFAULT_MAX_CROP_TOKENS
    """visual tokens a crop may take; a larger crop is resized for the model"""
    max_turns: int = 12
    """assistant turns per question (the paper evaluates with 12)"""
    max_new_tokens: int = 2048
    """tokens per assistant turn"""
    crop_mode: str = "model"
    """model: the model's crop; gt: the best-matching GT region; noise: same-size uniform noise"""
    save_crops: bool = False
    """write every crop handed to the model to crops/"""
    limit: int | None = None
    """only the first N questions"""
    batch_size: int = 8
    """questions per batch (each batch is appended to trajectories.jsonl when it ends)"""
    seed: int = 0
    """V* option shuffle (as bench) and the noise crops"""
    picture: int = 4
    """episodes drawn in trajectories.png (0: no picture)"""
    engine: dict[str, Any] = field(default_factory=dict)
    """vllm: extra ``LLM`` arguments (tensor_parallel_size, gpu_memory_utilization, max_model_len)"""


def crop_file_name(key: str, turn: int, call: int = 1) -> str:
    """The file a crop is saved as: ``<id>_<turn>.png``, and ``<id>_<turn>.<call>.png`` for a turn's second, third
    ... call (turns and calls count from 1).

    The id is percent-encoded (``urllib.parse.quote`` with no safe characters: letters, digits and ``_.-~`` stay,
    ``/`` becomes ``%2F``), so a V* id ``category/name`` makes one file inside ``crops/``, and different ids or
    turns never share a name.

    >>> crop_file_name("direct_attributes/sa_12", 2)
    'direct_attributes%2Fsa_12_2.png'
    >>> crop_file_name("q 7", 1, call=3)
    'q%207_1.3.png'
    """
    name = f"{quote(str(key), safe='')}_{turn}"
    return f"{name}.png" if call == 1 else f"{name}.{call}.png"


def noise_seed(seed: int, key: str) -> int:
    """The noise crops' seed of one question: fixed by ``--seed`` and its id, whatever else the run holds."""
    return zlib.crc32(f"{seed}:{key}".encode())


def run(config: AgentConfig, progress: bool = True) -> dict[str, Any]:
    """Run (resuming) and score one benchmark; writes the files the module docstring lists and returns the metrics."""
    loop = LoopConfig(max_turns=config.max_turns, max_new_tokens=config.max_new_tokens)  # --max-turns 0 fails here
    _check_flags(config)
    questions = load_questions(config.benchmark, config.data, config.seed)
    items = questions.items[: config.limit]
    model_dir = _model_dir(config)
    coord_frame = _coord_frame(config, model_dir)
    if config.crop_mode == "gt":
        bare = next((item for item in items if not item.boxes), None)
        if bare is not None:
            raise UserError(
                f"--crop-mode gt needs GT boxes, and {config.benchmark} question {bare.name} has none"
                + (" (HR-Bench publishes none)" if config.benchmark == "hrbench" else "")
            )
    _check_backend(config, questions, items, model_dir, coord_frame)  # before generation.json pins the settings
    out = Path(config.out)
    check_settings(out, _settings(config, model_dir, coord_frame))
    path = out / TRAJECTORIES_FILE
    done = _read_records(path, questions.items)
    pending = [item for item in items if item.index not in done]
    if pending:
        _Runner(config, questions, model_dir, coord_frame, loop).run(pending, path, len(items), progress)
    records = _read_records(path, questions.items)
    metrics = agent_metrics(config.benchmark, items, records)
    metrics["protocol"] = questions.protocol
    metrics["agent"] = _agent_protocol(config, coord_frame)
    label = Path(config.model).name if config.model else Path(config.replay or "replay").stem
    table = agent_table(label, metrics)
    notes = [protocol_note(questions.protocol), "Agent p" + protocol_note(metrics["agent"])[1:]]
    if "crop_iou_note" in metrics:
        notes.append(metrics["crop_iou_note"][0].upper() + metrics["crop_iou_note"][1:] + ".")
    _write_atomic(out / METRICS_FILE, _json(metrics))
    _write_atomic(out / TABLE_FILE, table + "\n\n" + "\n\n".join(notes) + "\n")
    if config.picture > 0 and items:
        shown = items[: config.picture]
        crops = out / CROPS_DIR if config.save_crops else None
        draw_trajectories(out / PICTURE_FILE, shown, [records[item.index] for item in shown], crops)
    return metrics


def _check_flags(config: AgentConfig) -> None:
    for name, value in (
        ("--max-visual-tokens", config.max_visual_tokens),
        ("--max-crop-visual-tokens", config.max_crop_visual_tokens),
        ("--batch-size", config.batch_size),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"{name} must be a positive integer, got {value!r}")
    if config.limit is not None and config.limit < 1:
        raise UserError(f"--limit must be a positive integer, got {config.limit}")
    if config.picture < 0:
        raise UserError(f"--picture must be >= 0, got {config.picture}")
    if config.backend not in BACKENDS:
        raise UserError(f"unknown --backend {config.backend!r}; expected one of {', '.join(BACKENDS)}")
    if config.crop_mode not in CROP_MODES:
        raise UserError(f"unknown --crop-mode {config.crop_mode!r}; expected one of {', '.join(CROP_MODES)}")
    if config.coord_frame is not None and config.coord_frame not in AGENT_FRAMES:
        raise UserError(f"--coord-frame must be one of {', '.join(AGENT_FRAMES)}, got {config.coord_frame!r}")
    if (config.backend == "replay") != (config.replay is not None):
        raise UserError("--replay FILE goes with --backend replay, and --backend replay needs --replay FILE")
    if config.backend == "openai" and not config.base_url:
        raise UserError("--backend openai needs --base-url (the server's API root, e.g. http://localhost:8000/v1)")
    if config.backend != "replay" and not config.model:
        raise UserError(f"--backend {config.backend} needs --model (a checkpoint folder, or the served model name)")


def _budget_pixels(config: AgentConfig, coord_frame: str) -> int:
    """Pixels the engine's processor must accept unresized: the larger of the view and crop budgets."""
    return frames.budget_pixels(max(config.max_visual_tokens, config.max_crop_visual_tokens), coord_frame)


def _check_backend(config: AgentConfig, questions: Questions, items: list[Item], model_dir: Path | None,
                   coord_frame: str) -> None:  # fmt: skip
    """What would stop the run after the model loads, checked first: the replay file's ids, vLLM's pixel limit."""
    if config.backend == "replay":
        lines = read_replay(Path(config.replay))
        known = {item.name for item in questions.items}
        unknown = sorted(key for key in lines if key not in known)
        if unknown:
            raise UserError(
                f"replay file {config.replay} has {len(unknown)} ids that are no question of {config.data} "
                f"(first: {unknown[0]!r}); record turns for this benchmark's ids"
            )
        missing = [item.name for item in items if item.name not in lines]
        if missing:
            raise UserError(
                f"replay file {config.replay} has no line for id {missing[0]!r} ({len(missing)} questions lack one); "
                "record its turns or leave it out (--limit)"
            )
    if config.backend == "vllm":
        high, need = pixel_limits(load_processor(model_dir))[1], _budget_pixels(config, coord_frame)
        if need > high:
            raise UserError(
                f"vLLM resizes with the checkpoint's max_pixels {high}, below the {need} pixels of"
                " --max-visual-tokens / --max-crop-visual-tokens; lower them or raise max_pixels in "
                f"{model_dir}/preprocessor_config.json"
            )


def _model_dir(config: AgentConfig) -> Path | None:
    """The local checkpoint folder: required for hf and vllm; for replay and openai when ``--model`` names one."""
    if config.model is None:
        return None
    if config.backend in ("hf", "vllm"):
        return resolve_model(config.model)
    try:
        return resolve_model(config.model)
    except UserError:  # a served model name without a local copy: no processor, Qwen ChatML and the frame flag
        return None


def _coord_frame(config: AgentConfig, model_dir: Path | None) -> str:
    if config.coord_frame is not None:
        return config.coord_frame
    frame = checkpoint_coord_frame(model_dir) if model_dir is not None else None
    if frame is None:
        source = f"{model_dir}/config.json names no Qwen2.5-VL or Qwen3-VL model_type" if model_dir else "no --model"
        raise UserError(f"give --coord-frame {' or '.join(AGENT_FRAMES)} ({source})")
    return frame


def _settings(config: AgentConfig, model_dir: Path | None, coord_frame: str) -> dict[str, Any]:
    replay = Path(config.replay) if config.replay else None
    return {
        "task": f"agent-{config.benchmark}",
        "model": str(model_dir.resolve()) if model_dir else config.model,
        "data": str(Path(config.data).resolve()),
        "backend": config.backend,
        "replay": str(replay.resolve()) if replay else None,
        "replay_sha256": hashlib.sha256(replay.read_bytes()).hexdigest() if replay and replay.is_file() else None,
        "base_url": config.base_url,
        "coord_frame": coord_frame,
        "max_visual_tokens": config.max_visual_tokens,
        "max_crop_visual_tokens": config.max_crop_visual_tokens,
        "max_turns": config.max_turns,
        "max_new_tokens": config.max_new_tokens,
        "crop_mode": config.crop_mode,
        "save_crops": config.save_crops,
        "seed": config.seed,
        "decoding": "greedy",
    }


def _agent_protocol(config: AgentConfig, coord_frame: str) -> dict[str, Any]:
    factor = frames.BACKBONES[coord_frame].factor
    return {
        "coord_frame": coord_frame,
        "view": f"processor smart_resize at {config.max_visual_tokens} visual tokens (max_pixels "
        f"{config.max_visual_tokens}*{factor}*{factor}, the processor's min_pixels, no EasyR1 pre-resize)",
        "crops": f"cut from the original, up to {config.max_crop_visual_tokens} visual tokens",
        "crop_mode": config.crop_mode,
        "max_turns": config.max_turns,
        "max_new_tokens_per_turn": config.max_new_tokens,
        "decoding": "greedy",
        "no_answer": "wrong",
        "backend": config.backend,
    }


def _read_records(path: Path, items: list[Item]) -> dict[int, dict[str, Any]]:
    """Saved trajectories by index; a line whose id is not its index's question means the data changed."""
    records = read_predictions(path)
    names = {item.index: item.name for item in items}
    for index, record in records.items():
        if names.get(index) != record.get("id"):
            raise UserError(
                f"{path}: line for question {index} holds id {record.get('id')!r}, but the data now has "
                f"{names.get(index)!r} there; the data changed: use a new --out"
            )
    return records


class _Runner:
    """Builds the backend (only when something is left to run) and runs batches of questions."""

    def __init__(self, config: AgentConfig, questions: Questions, model_dir: Path | None, coord_frame: str,
                 loop: LoopConfig):  # fmt: skip
        self.config, self.questions, self.coord_frame, self.loop = config, questions, coord_frame, loop
        self.backend, self.processor = self._backend(model_dir)
        if self.processor is not None:
            self.min_pixels = pixel_limits(self.processor)[0]
        else:
            self.min_pixels = frames.BACKBONES[coord_frame].processor_min_pixels
        self.crops = Path(config.out) / CROPS_DIR if config.save_crops else None

    def _backend(self, model_dir: Path | None) -> tuple[Any, Any]:
        config = self.config
        if config.backend == "hf":
            # the processor must take the view and every crop as they are: max_pixels at least both budgets
            backend = load_backend("hf", model_dir, max_pixels=_budget_pixels(config, self.coord_frame))
            return backend, backend.processor
        if config.backend == "vllm":  # its pixel limit was checked before the run (_check_backend)
            images = 1 + (config.max_turns - 1) * MAX_CALLS_PER_TURN  # the view and every crop an episode can get
            backend = load_backend("vllm", model_dir, limit_images=images, **config.engine)
            return backend, backend.processor
        processor = load_processor(model_dir) if model_dir is not None else None
        if config.backend == "openai":
            return load_backend("openai", config.model, base_url=config.base_url), processor
        return load_backend("replay", "", path=config.replay, tokenizer=processor), processor

    def run(self, pending: list[Item], path: Path, total: int, progress: bool) -> None:
        size = self.config.batch_size
        desc = f"agent {self.config.benchmark}"
        with (
            PredictionWriter(path) as writer,
            tqdm(total=total, initial=total - len(pending), desc=desc, unit="question", disable=not progress) as bar,
        ):
            for start in range(0, len(pending), size):
                chunk = pending[start : start + size]
                setups = [self._episode(item) for item in chunk]
                episodes = run_episodes([episode for episode, _ in setups], self.backend, self.loop, progress=False)
                writer.write([self._record(item, episode, seconds) for item, episode, (_, seconds)
                              in zip(chunk, episodes, setups)])  # fmt: skip
                bar.update(len(chunk))

    def _episode(self, item: Item) -> tuple[Episode, float]:
        started = time.perf_counter()
        try:
            original = open_image(item.image).convert("RGB")  # decoded once: the view and every crop come from it
        except (OSError, ValueError) as err:
            raise UserError(f"{self.config.data}: question {item.name}: the image does not decode ({err})") from None
        config = self.config
        view = View.at_budget(original, self.coord_frame, config.max_visual_tokens, min_pixels=self.min_pixels)
        tool = CropTool(
            original,
            view,
            max_crop_tokens=config.max_crop_visual_tokens,
            min_pixels=self.min_pixels,
            mode=config.crop_mode,
            gt_boxes=self.questions.gt_boxes(item),
            seed=noise_seed(config.seed, item.name),
        )
        episode = Episode.start(item.name, question_text(item), view, tool, processor=self.processor)
        return episode, time.perf_counter() - started

    def _record(self, item: Item, episode: Episode, setup_seconds: float) -> dict[str, Any]:
        width, height = self.questions.sizes[item.index]
        gt = self.questions.gt_boxes(item)
        turns = []
        for number, turn in enumerate(episode.turns, start=1):
            entry = turn.to_dict()
            for position, (call, saved) in enumerate(zip(turn.calls, entry["calls"]), start=1):
                if call.error is not None:
                    continue
                saved.update(crop_scores(call.box_orig, gt, width, height))
                saved["crop_file"] = crop_file_name(item.name, number, position) if self.crops else None
                if self.crops is not None:
                    _save_png(call.crop, self.crops / saved["crop_file"])
            turns.append(entry)
        seconds = setup_seconds + sum(turn.seconds for turn in episode.turns)
        return {
            "index": item.index,
            "id": item.name,
            "question": item.question,
            "choices": item.options or None,
            "answer": item.answer,
            "prediction": episode.answer,
            **score_answer(item, episode.answer),
            "end_reason": episode.end_reason,
            "category": item.category,
            "cycle": item.cycle,
            "tool_calls": sum(call.error is None for call in episode.calls),
            "turns": turns,
            "image_size": [width, height],
            "view_size": list(episode.view.seen_size),
            "view_tokens": episode.view.tokens,
            "gt_boxes": [list(box) for box in gt],
            "response_tokens": episode.response_tokens,
            "seconds": seconds,
        }


def _save_png(image: Any, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    image.save(tmp, format="PNG")
    os.replace(tmp, target)


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
