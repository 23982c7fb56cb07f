"""``locus-data select-resolution``: offline resolution selection, the view each question shows in LFPC Stage I.

LFPC §4.1: the policy to be trained answers each question on the original image and on successively downsampled
versions of it; the first version whose answer differs from the original's is the view Stage I shows the model,
while crops are still cut from the original -- the information gap. Table 9's baselines pick the most downsampled
version (``hard``) or a uniform random one (``random``).

The versions of a question, all resized straight from the original (bicubic, as the Qwen-VL processor resizes):

* version 0 is the original as the model sees it at ``--max-pixels`` (default :data:`STAGE1_MAX_PIXELS`, the Stage I
  recipe's ``data.max_pixels``): its seen size under EasyR1's pre-resize and the processor's ``smart_resize``;
* version k has ``--scale-step`` ** k of version 0's pixels (default 0.5: each version half the pixels of the one
  before, sides / sqrt(2)), sides rounded down to the backbone's patch factor (28 Qwen2.5-VL, 32 Qwen3-VL);
* the floor: no version below ``--min-scale`` of version 0's pixels (default 1/16, four downsampled versions: the
  smallest has a quarter of the sides), nor below the processor's own ``min_pixels`` (the processor would upscale
  it again); a version of the same size as the one before is not asked twice.

Every version is stored at exactly the size the model saw it, a multiple of the factor within the processor's
limits, so EasyR1 (``data.min_pixels`` below it, ``data.max_pixels`` at least version 0) shows the selected view in
training unchanged.

``lfpc`` asks version 0 and version 1, then each next version while the answer has not changed; "the answer
differs" compares answers as the reward judges them (:func:`locus_reward.answers.answer_key`: the option letter, or
the normalized short answer; two unreadable answers are the same). A question whose answer never changes down to the
floor follows ``--never-diverged``: ``floor`` (default; keep the most downsampled version, the paper's natural
reading: no version was informative enough to change the answer, so the least informative one is kept), ``original``
(keep the question without a view), or ``drop`` (leave it out). ``hard`` and ``random`` do not ask the model (their
rows record no answers); ``random`` draws from the question's id and ``--seed``, independent of batch order. A
question whose original is too small for any downsampled version keeps the original (no view).

Outputs in ``--out``: ``manifest.jsonl`` (the input rows, ``image`` still the original for crops, plus ``view_image``
= ``views/<id>.png`` and ``selection``: the strategy, the version and scale chosen, the view size, and the answer
given at every version asked), ``selection.json`` (histogram of selected scales, the never-diverged count, counts,
settings) and ``.selection/`` (the settings and ``progress.jsonl``: every answer, appended and flushed as each batch
finishes). Rerun the same command after a kill to resume: answers already recorded are never asked again, and with
``--batch-size 1`` the result is exactly that of an uninterrupted run. Feed the manifest to ``locus-data
export-lfpc``.
"""

import argparse
import dataclasses
import hashlib
import json
import math
import os
import re
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from locus_agent.backends import BACKENDS, Request
from locus_agent.conversation import render_prompt
from locus_data.errors import UserError
from locus_data.images import open_image
from locus_data.outputs import atomic_path, atomic_write_text
from locus_data.vqa import (
    MANIFEST_NAME,
    SELECTION,
    VIEW_IMAGE,
    VqaItem,
    manifest_path,
    read_manifest,
    view_problem,
    write_manifest,
)
from locus_reward import frames
from locus_reward.answers import answer_key, question_prompt


STAGE1_MAX_PIXELS = 2048 * 28 * 28
"""default ``--max-pixels`` (1,605,632 = 2,048 visual tokens of Qwen2.5-VL): version 0 is the original as Stage I
shows it, so this MUST equal ``data.max_pixels`` of config/lfpc_stage1_qwen2_5_vl_7b.yaml (a test compares them)"""
DEFAULT_SCALE_STEP = 0.5
"""each version has this share of the previous version's pixels"""
DEFAULT_MIN_SCALE = 1 / 16
"""no version below this share of version 0's pixels (with 0.5 steps: versions 1/2, 1/4, 1/8, 1/16)"""
DEFAULT_BATCH_SIZE = 8
DEFAULT_MAX_NEW_TOKENS = 64
"""an answer is a letter or a short phrase (the question prompt asks for one); longer output is cut"""
STRATEGIES = ("lfpc", "hard", "random")
NEVER_DIVERGED = ("floor", "original", "drop")
ASKING = ("lfpc",)
"""strategies that ask the model (``hard`` and ``random`` pick without answers)"""
BACKEND_CHOICES = tuple(name for name in BACKENDS if name != "replay")  # a replay file has no answers per version
REPORT = "selection.json"
VIEWS = "views"
STATE = ".selection"
PROGRESS = "progress.jsonl"
SETTINGS = "settings.json"
OWNED = (MANIFEST_NAME, REPORT, VIEWS, STATE)
"""what this command writes in ``--out``: ``--overwrite`` removes these and nothing else"""
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass(frozen=True)
class Grid:
    """The pixel grid of the model whose views are selected."""

    family: str
    """qwen2_5_vl or qwen3_vl (from the checkpoint's config.json; qwen2_5_vl for a served model without one)"""
    factor: int
    """pixels per visual token a side: every stored side is a multiple"""
    floor_pixels: int
    """the processor's own ``min_pixels``: no version is smaller (the processor would upscale it)"""
    cap_pixels: int
    """``--max-pixels``: version 0 is the original seen at this limit"""


@dataclass(frozen=True)
class Version:
    """One resolution of a question's image, as the model is shown it."""

    index: int
    """0 = the original at ``--max-pixels``; k = ``scale_step ** k`` of its pixels"""
    scale: float
    """nominal share of version 0's pixels (``scale_step ** index``)"""
    width: int
    """width shown (and stored)"""
    height: int
    """height shown (and stored)"""


def versions(width: int, height: int, grid: Grid, scale_step: float, min_scale: float) -> list[Version]:
    """The versions of a ``width x height`` original: version 0 then the downsampled ones, down to the floor.

    >>> grid = Grid("qwen2_5_vl", 28, 3136, 1605632)
    >>> [(v.index, v.width, v.height) for v in versions(4000, 3000, grid, 0.5, 1 / 16)]
    [(0, 1456, 1092), (1, 1008, 756), (2, 728, 532), (3, 504, 364), (4, 364, 252)]
    >>> len(versions(60, 60, grid, 0.5, 1 / 16))  # 56x56 shown; nothing smaller the processor keeps
    1
    """
    limits = dict(min_pixels=None, max_pixels=grid.cap_pixels, processor_min_pixels=grid.floor_pixels)
    seen_w, seen_h = frames.seen_size(width, height, grid.family, **limits, processor_max_pixels=grid.cap_pixels)
    found = [Version(0, 1.0, seen_w, seen_h)]
    last = math.floor(math.log(min_scale) / math.log(scale_step) + 1e-9)
    for index in range(1, last + 1):
        scale = scale_step**index
        target = max(1, int(seen_w * seen_h * scale))
        # the processor's smart_resize at a cap of `target` pixels: sides floored to the factor, the aspect kept
        h, w = frames.smart_resize(height, width, grid.factor, 1, target)
        if w * h < grid.floor_pixels or (w, h) == (found[-1].width, found[-1].height):
            continue
        if w > width or h > height or view_problem(w, h, width, height) is not None:
            continue  # a sliver whose rounding would change its aspect is no view of the original
        found.append(Version(index, scale, w, h))
    return found


def scale_label(scale: float) -> str:
    """The histogram key of a nominal scale.

    >>> scale_label(0.5 ** 3), scale_label(1 / 3)
    ('0.125', '0.3333')
    """
    return f"{scale:.4g}"


def random_pick(seed: int, key: str, count: int) -> int:
    """A uniform pick in ``1..count`` from ``seed`` and the question id alone (no batch order, no global state).

    >>> random_pick(0, "q1", 4) == random_pick(0, "q1", 4), 1 <= random_pick(3, "q9", 4) <= 4
    (True, True)
    """
    digest = hashlib.sha256(f"{seed}\0{key}".encode()).digest()
    return 1 + int.from_bytes(digest[:8], "big") % count


@dataclass(frozen=True)
class Settings:
    """What decides the result of a run; a resume must match every field (batch size and --limit may change)."""

    strategy: str
    """lfpc, hard or random"""
    never_diverged: str
    """lfpc: floor, original or drop"""
    scale_step: float
    """pixel share of each version relative to the one before"""
    min_scale: float
    """the floor, as a share of version 0's pixels"""
    cap_pixels: int
    """version 0's pixel limit (``--max-pixels``)"""
    seed: int
    """random's seed"""
    model: str
    """the checkpoint (or served model name)"""
    backend: str
    """hf, vllm or openai"""
    max_new_tokens: int
    """answer length limit"""
    manifest: str
    """the input manifest's absolute path"""
    manifest_sha256: str
    """its contents' hash: a changed manifest is another input"""

    FLAGS = {
        "cap_pixels": "--max-pixels",
        "max_new_tokens": "--max-new-tokens",
        "manifest": "--data",
        "manifest_sha256": "--data (its contents)",
    }

    def difference(self, other: "Settings") -> str | None:
        """The first setting that differs from ``other``'s, as ``--flag old -> new``; None when they agree."""
        for field in dataclasses.fields(self):
            old, new = getattr(other, field.name), getattr(self, field.name)
            if old != new:
                flag = self.FLAGS.get(field.name, "--" + field.name.replace("_", "-"))
                return f"{flag} {old} (this run: {new})"
        return None


class ProgressLog:
    """``.selection/progress.jsonl``: one ``{"id", "version", "size", "answer"}`` line per answer, appended per batch.

    A line cut by a kill (no newline) is dropped on reading and cut from the file, so appends stay whole lines.
    """

    def __init__(self, path: Path):
        self.path = path
        self.answers: dict[tuple[str, int], dict[str, Any]] = {}
        if path.is_file():
            data = path.read_bytes()
            whole = data[: data.rfind(b"\n") + 1]
            if len(whole) != len(data):
                with path.open("r+b") as file:
                    file.truncate(len(whole))
            for number, line in enumerate(whole.decode("utf-8").splitlines(), 1):
                try:
                    row = json.loads(line)
                    self.answers[(row["id"], int(row["version"]))] = row
                except (ValueError, KeyError, TypeError):
                    raise UserError(
                        f"{path}:{number} is not a progress line; pass --overwrite to start over"
                    ) from None
        self.lines = len(self.answers)

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Record a finished batch's answers (one write, flushed and synced: a kill loses at most the batch)."""
        with self.path.open("a", encoding="utf-8") as file:
            file.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
            file.flush()
            os.fsync(file.fileno())
        for row in rows:
            self.answers[(row["id"], row["version"])] = row
        self.lines += len(rows)


@dataclass
class Question:
    """One question in flight: its versions, the answers recorded so far, and the decision once made."""

    item: VqaItem
    versions: list[Version]
    answers: dict[int, str] = dataclasses.field(default_factory=dict)

    def needed(self, settings: Settings) -> list[Version]:
        """The versions to ask next: version 0 and 1 first, then the next one while the answer has not changed."""
        if settings.strategy not in ASKING or len(self.versions) < 2:
            return []
        if 0 not in self.answers:
            return [v for v in self.versions[:2] if v.index not in self.answers]
        for version in self.versions[1:]:
            if version.index not in self.answers:
                return [version]
            if self.differs(version.index):
                return []
        return []

    def differs(self, index: int) -> bool:
        choices = self.item.choices
        return answer_key(self.answers[index], choices) != answer_key(self.answers[0], choices)

    def decide(self, settings: Settings) -> tuple[Version | None, str]:
        """``(version, rule)``: the chosen view (None: the original, no view) and why; rule ``drop``: left out."""
        downsampled = self.versions[1:]
        if not downsampled:
            return None, "no downsampled version"
        if settings.strategy == "hard":
            return downsampled[-1], "hard"
        if settings.strategy == "random":
            return downsampled[random_pick(settings.seed, self.item.id, len(downsampled)) - 1], "random"
        for version in downsampled:
            if self.differs(version.index):
                return version, "first divergence"
        rule = f"never diverged: {settings.never_diverged}"
        if settings.never_diverged == "floor":
            return downsampled[-1], rule
        return None, "drop" if settings.never_diverged == "drop" else rule

    def record(self, settings: Settings, version: Version | None, rule: str) -> dict[str, Any]:
        """The row's ``selection`` field: why this view."""
        original = self.versions[0]
        record: dict[str, Any] = {
            "strategy": settings.strategy,
            "rule": rule,
            "version": None if version is None else version.index,
            "scale": None if version is None else version.scale,
            "view_size": None if version is None else [version.width, version.height],
            "shown_size": [original.width, original.height],
            "original_size": [self.item.width, self.item.height],
        }
        if settings.strategy in ASKING:
            record["answers"] = [
                {
                    "version": v.index,
                    "scale": v.scale,
                    "size": [v.width, v.height],
                    "answer": self.answers[v.index],
                    "key": answer_key(self.answers[v.index], self.item.choices),
                }
                for v in self.versions
                if v.index in self.answers
            ]
        else:
            record["answers"] = None  # hard and random do not ask the model
        return record


class ChunkImages:
    """The versions of one batch's questions, each original decoded once (freed with the batch)."""

    def __init__(self) -> None:
        self.originals: dict[str, Any] = {}
        self.shown: dict[tuple[str, int], Any] = {}

    def get(self, question: Question, version: Version) -> Any:
        """``version`` of ``question``'s image, resized straight from the original."""
        key = (question.item.id, version.index)
        if key not in self.shown:
            if question.item.id not in self.originals:
                with open_image(question.item.image) as opened:
                    self.originals[question.item.id] = opened.convert("RGB")
            self.shown[key] = _resize(self.originals[question.item.id], version)
        return self.shown[key]


def view_name(key: str) -> str:
    """A file name for a question's view: the id when it is a safe name, else a slug and a hash of the id.

    >>> view_name("q_001"), view_name("a/b c")
    ('q_001.png', 'a_b_c-0af99a609169.png')
    """
    if _SAFE_NAME.fullmatch(key):
        return f"{key}.png"
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", key)[:60].strip("._") or "q"
    return f"{slug}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.png"


def check_out(out: Path, source: Path, overwrite: bool) -> None:
    """Refuse an ``--out`` that is a file, would overwrite the input manifest, or holds it (without ``overwrite``)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; name a folder")
    out_abs, source_abs = out.resolve(), source.resolve()
    if out_abs / MANIFEST_NAME == source_abs:
        raise UserError(f"--out {out} would overwrite the input manifest {source}; choose another folder")
    if source_abs.is_relative_to(out_abs) and not overwrite:
        raise UserError(
            f"--out {out} holds the input manifest {source}; choose another folder (or pass --overwrite to write "
            "beside it: only this command's files are replaced)"
        )


def prepare_out(out: Path, source: Path, settings: Settings, overwrite: bool) -> None:
    """Check ``--out`` and claim it: a new folder, a resume with equal settings, or (``overwrite``) a fresh start."""
    check_out(out, source, overwrite)
    stored_path = out / STATE / SETTINGS
    if out.is_dir() and any(out.iterdir()):
        if overwrite:
            for name in OWNED:
                path = out / name
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
        elif not stored_path.is_file():
            raise UserError(
                f"--out {out} is not empty and holds no select-resolution run; choose another folder or pass "
                "--overwrite (replaces only this command's files)"
            )
        else:
            try:
                stored = Settings(**json.loads(stored_path.read_text(encoding="utf-8")))
            except (ValueError, TypeError):
                raise UserError(f"{stored_path} is not a settings file; pass --overwrite to start over") from None
            difference = settings.difference(stored)
            if difference is not None:
                raise UserError(
                    f"--out {out} holds a run with other settings: {difference}; rerun with the same settings to "
                    "resume, or pass --overwrite to start over"
                )
            return
    (out / STATE).mkdir(parents=True, exist_ok=True)
    atomic_write_text(stored_path, json.dumps(dataclasses.asdict(settings), indent=2) + "\n")


def load_grid(model: str, backend: str, max_pixels: int) -> tuple[Grid, Any]:
    """The model's pixel grid and its processor (None for a served model with no local checkpoint)."""
    from locus_agent.processor import (
        ModelNotFound,
        checkpoint_coord_frame,
        load_processor,
        pixel_limits,
        resolve_model,
    )

    try:
        path = resolve_model(model)
    except ModelNotFound:
        if backend != "openai":
            raise
        # a served model name: the server's processor is not at hand; Qwen2.5-VL's grid (say so in the docs)
        backbone = frames.BACKBONES["qwen2_5_vl"]
        family, factor, low, processor = backbone.coord_frame, backbone.factor, backbone.processor_min_pixels, None
    else:
        family = checkpoint_coord_frame(path) or "qwen2_5_vl"
        try:
            processor = load_processor(path)
        except (ValueError, OSError) as err:
            raise UserError(f"--model {model}: {err}") from None
        image_processor = processor.image_processor
        factor = int(image_processor.patch_size * image_processor.merge_size)
        low, _ = pixel_limits(processor)
    if max_pixels < low:
        raise UserError(f"--max-pixels {max_pixels} is below the processor's min_pixels {low}; raise it")
    return Grid(family, factor, low, max_pixels), processor


def load_selection_backend(name: str, model: str, base_url: str | None, grid: Grid) -> Any:
    """The generation backend, its processor limits set so every version is shown at exactly its stored size."""
    from locus_agent.backends import load_backend

    if name == "openai":
        if not base_url:
            raise UserError("--backend openai needs --base-url (e.g. http://localhost:8000/v1)")
        return load_backend(name, model, base_url=base_url)
    if base_url:
        raise UserError(f"--base-url is for --backend openai, not {name}")
    from locus_agent.processor import resolve_model

    path = resolve_model(model)
    try:
        if name == "hf":
            return load_backend(name, path, max_pixels=grid.cap_pixels)
        return load_backend(name, path, limit_images=1, mm_processor_kwargs={"max_pixels": grid.cap_pixels})
    except ImportError as err:
        raise UserError(str(err)) from None


def make_request(item: VqaItem, image: Any, processor: Any) -> Request:
    """The plain question (no tool, no system prompt of ours) about ``image``, single turn."""
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "image", "image": image},
                {"type": "text", "text": question_prompt(item.question, item.choices)},
            ],
        }
    ]
    return Request(render_prompt(messages, processor), [image], messages=messages, key=item.id)


def select_resolution(
    manifest: str | Path,
    out: str | Path,
    *,
    model: str | None,
    backend: str = "hf",
    strategy: str = "lfpc",
    never_diverged: str = "floor",
    seed: int = 0,
    max_pixels: int = STAGE1_MAX_PIXELS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    scale_step: float = DEFAULT_SCALE_STEP,
    min_scale: float = DEFAULT_MIN_SCALE,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    limit: int | None = None,
    base_url: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    engine: Any = None,
    grid: Grid | None = None,
) -> dict[str, Any]:
    """Run the selection; returns what ``selection.json`` holds.

    ``engine``: a ready backend object (anything with the backend interface's ``generate``) used instead of
    loading ``backend``; ``grid``: the pixel grid instead of the checkpoint's (both for callers that hold them).
    """
    check_numbers(strategy, never_diverged, seed, max_pixels, batch_size, scale_step, min_scale, max_new_tokens, limit)
    if backend not in BACKEND_CHOICES:
        raise UserError(f"--backend must be one of {', '.join(BACKEND_CHOICES)}, got {backend!r}")
    if not model:
        raise UserError("--model is required: the checkpoint (or served model) whose answers and pixel grid decide")
    source = manifest_path(manifest)
    out = Path(out)
    check_out(out, source, overwrite)  # before the manifest is read: a wrong --out is the cheaper mistake to name
    settings = Settings(
        strategy,
        never_diverged,
        scale_step,
        min_scale,
        max_pixels,
        seed,
        str(model),
        backend,
        max_new_tokens,
        str(source.resolve()),
        hashlib.sha256(source.read_bytes()).hexdigest(),
    )
    items = read_manifest(source, progress=progress)[:limit]
    if not items:
        raise UserError(f"{source} has no rows")
    prepare_out(out, source, settings, overwrite)
    processor = None
    if grid is None:
        grid, processor = load_grid(str(model), backend, max_pixels)
    questions = [Question(it, versions(it.width, it.height, grid, scale_step, min_scale)) for it in items]
    log = ProgressLog(out / STATE / PROGRESS)
    for question in questions:
        for version in question.versions:
            row = log.answers.get((question.item.id, version.index))
            if row is None:
                continue
            if row.get("size") != [version.width, version.height]:
                raise UserError(
                    f"{log.path}: {question.item.id} version {version.index} was answered at {row.get('size')}, "
                    f"not {version.width}x{version.height}; the images changed: pass --overwrite to start over"
                )
            question.answers[version.index] = row["answer"]
    started, asked = time.time(), 0
    if strategy in ASKING and engine is None and any(q.needed(settings) for q in questions):
        engine = load_selection_backend(backend, str(model), base_url, grid)
    (out / VIEWS).mkdir(parents=True, exist_ok=True)
    results: list[VqaItem] = []
    counts: Counter[str] = Counter()
    histogram: Counter[str] = Counter()
    bar = tqdm(total=len(questions), desc=f"select-resolution ({strategy})", unit="question", disable=not progress)
    for chunk in _chunks(questions, batch_size):
        images = ChunkImages()

        while True:
            wanted = [(q, v) for q in chunk for v in q.needed(settings)]
            if not wanted:
                break
            for call in _chunks(wanted, batch_size):
                requests = [make_request(q.item, images.get(q, v), processor) for q, v in call]
                generations = engine.generate(requests, max_new_tokens)
                if len(generations) != len(requests):  # zip would drop answers silently
                    raise RuntimeError(f"the backend returned {len(generations)} answers for {len(requests)} requests")
                rows = [
                    {"id": q.item.id, "version": v.index, "size": [v.width, v.height], "answer": g.text}
                    for (q, v), g in zip(call, generations)
                ]
                log.append(rows)
                for (q, v), g in zip(call, generations):
                    q.answers[v.index] = g.text
                asked += len(call)
                bar.set_postfix(asked=asked)
        for question in chunk:
            version, rule = question.decide(settings)
            counts[rule] += 1
            if rule == "drop":
                continue
            item = question.item
            extra = {k: v for k, v in item.extra.items() if k != VIEW_IMAGE}
            extra[SELECTION] = question.record(settings, version, rule)
            if version is None:
                results.append(
                    dataclasses.replace(item, extra=extra, view_image=None, view_width=None, view_height=None)
                )
                continue
            path = out / VIEWS / view_name(item.id)
            if not _is_view(path, version):
                _save_atomic(images.get(question, version), path)
            histogram[scale_label(version.scale)] += 1
            results.append(
                dataclasses.replace(
                    item, extra=extra, view_image=path.absolute(), view_width=version.width, view_height=version.height
                )
            )
        bar.update(len(chunk))
    bar.close()
    if not results:
        raise UserError(f"every question was dropped (--never-diverged drop); nothing written to {out}")
    write_manifest(out / MANIFEST_NAME, results)
    report = {
        **{k: v for k, v in dataclasses.asdict(settings).items() if k not in ("manifest_sha256", "cap_pixels")},
        "max_pixels": settings.cap_pixels,
        "model_family": grid.family,
        "factor": grid.factor,
        "processor_min_pixels": grid.floor_pixels,
        "batch_size": batch_size,
        "limit": limit,
        "questions": len(questions),
        "written": len(results),
        "selected_views": sum(histogram.values()),
        "histogram": dict(sorted(histogram.items(), key=lambda kv: -float(kv[0]))),
        "never_diverged_count": sum(n for rule, n in counts.items() if rule.startswith("never diverged")),
        "rules": dict(sorted(counts.items())),
        "dropped": counts["drop"],
        "answers_recorded": log.lines,
        "asked_this_run": asked,
        "seconds_this_run": round(time.time() - started, 3),
    }
    atomic_write_text(out / REPORT, json.dumps(report, indent=2) + "\n")
    return report


def check_numbers(
    strategy: str,
    never_diverged: str,
    seed: int,
    max_pixels: int,
    batch_size: int,
    scale_step: float,
    min_scale: float,
    max_new_tokens: int,
    limit: int | None,
) -> None:
    """One-line errors for settings out of range, before anything is read or loaded."""
    if strategy not in STRATEGIES:
        raise UserError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if never_diverged not in NEVER_DIVERGED:
        raise UserError(f"--never-diverged must be one of {', '.join(NEVER_DIVERGED)}, got {never_diverged!r}")
    if not 0 < scale_step < 1:
        raise UserError(f"--scale-step must be in (0, 1) (each version's share of the one before), got {scale_step}")
    if not 0 < min_scale < 1:
        raise UserError(f"--min-scale must be in (0, 1) (the floor's share of version 0's pixels), got {min_scale}")
    if min_scale > scale_step:
        raise UserError(f"--min-scale {min_scale} is above --scale-step {scale_step}: no downsampled version fits")
    if seed < 0:
        raise UserError(f"--seed must be >= 0, got {seed}")
    if batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {batch_size}")
    if max_pixels < 1:
        raise UserError(f"--max-pixels must be >= 1, got {max_pixels}")
    if max_new_tokens < 1:
        raise UserError(f"--max-new-tokens must be >= 1, got {max_new_tokens}")
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be >= 1, got {limit}")


def _chunks(values: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _resize(original: Any, version: Version) -> Any:
    from PIL import Image  # the Qwen-VL image processor resizes bicubic; so does every version here

    if original.size == (version.width, version.height):
        return original
    return original.resize((version.width, version.height), Image.Resampling.BICUBIC)


def _is_view(path: Path, version: Version) -> bool:
    # a view written before a kill is complete (written atomically) and deterministic: keep it when its size fits
    if not path.is_file():
        return False
    try:
        with open_image(path) as opened:
            return opened.size == (version.width, version.height)
    except (OSError, ValueError):
        return False


def _save_atomic(image: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")  # lossless: the view is exactly what the model answered on


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="the VQA manifest (.jsonl, or its folder)")
    parser.add_argument(
        "--model", help="checkpoint (or hub id; the served model name with --backend openai): required"
    )
    parser.add_argument("--backend", default="hf", choices=BACKEND_CHOICES, help="generation backend (default hf)")
    parser.add_argument("--base-url", help="--backend openai: the API root, e.g. http://localhost:8000/v1")
    parser.add_argument("--out", required=True, type=Path, help="output folder (rerun the same command to resume)")
    parser.add_argument(
        "--strategy",
        default="lfpc",
        choices=STRATEGIES,
        help="lfpc: first version whose answer differs (default); hard: the most downsampled; random: a seeded "
        "uniform pick among the downsampled versions (hard and random do not ask the model)",
    )
    parser.add_argument(
        "--never-diverged",
        default="floor",
        choices=NEVER_DIVERGED,
        help="lfpc, when no version changes the answer: keep the most downsampled (floor, default), keep the "
        "original without a view (original), or leave the question out (drop)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random's seed (default 0)")
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=STAGE1_MAX_PIXELS,
        help=f"version 0 = the original seen at this limit (default {STAGE1_MAX_PIXELS:,}, the Stage I recipe's "
        "data.max_pixels)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"questions per batch and requests per generate call (default {DEFAULT_BATCH_SIZE}; 1: exactly "
        "reproducible across resumes)",
    )
    parser.add_argument(
        "--scale-step",
        type=float,
        default=DEFAULT_SCALE_STEP,
        help=f"each version's share of the previous version's pixels (default {DEFAULT_SCALE_STEP})",
    )
    parser.add_argument(
        "--min-scale",
        type=float,
        default=DEFAULT_MIN_SCALE,
        help=f"the floor: no version below this share of version 0's pixels (default {DEFAULT_MIN_SCALE})",
    )
    parser.add_argument(
        "--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS, help="answer length limit (default 64)"
    )
    parser.add_argument("--limit", type=int, help="only the first N questions")
    parser.add_argument("--overwrite", action="store_true", help="start over: replaces only this command's files")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    report = select_resolution(
        args.data,
        args.out,
        model=args.model,
        backend=args.backend,
        strategy=args.strategy,
        never_diverged=args.never_diverged,
        seed=args.seed,
        max_pixels=args.max_pixels,
        batch_size=args.batch_size,
        scale_step=args.scale_step,
        min_scale=args.min_scale,
        max_new_tokens=args.max_new_tokens,
        limit=args.limit,
        base_url=args.base_url,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    histogram = ", ".join(f"{scale}: {n}" for scale, n in report["histogram"].items()) or "none"
    print(
        f"wrote {Path(args.out) / MANIFEST_NAME}: {report['written']} of {report['questions']} questions, "
        f"{report['selected_views']} views (scales {histogram}), {report['never_diverged_count']} never diverged, "
        f"{report['dropped']} dropped; {report['asked_this_run']} answers asked"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="locus-data select-resolution",
        description=__doc__.splitlines()[0],
        epilog="example: locus-data select-resolution --data data/synth_vqa --model Qwen/Qwen2.5-VL-7B-Instruct "
        "--backend vllm --out data/synth_vqa_selected",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except UserError as err:
        print(f"locus-data select-resolution: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("locus-data select-resolution: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
