"""``locus-data convert-vqa``: the public VQA sets LFPC trains on -> the VQA manifest (:mod:`locus_data.vqa`).

LFPC's Stage I uses image + question + answer of PixelReasoner and Chain-of-Focus and a few ThinkLite-VL samples
(their SFT trajectories are not used); its Stage II annotates 256 VisualProbe questions (Mini-o3) with nested boxes.
Each reader below was written from the format its authors' public code reads -- the repository and path are named
-- and is tested on small files built in that format; none of the sets is downloaded by LOCUS.

``pixelreasoner`` -- TIGER-Lab/PixelReasoner-RL-Data (Hugging Face): ``release.parquet`` next to ``images.zip`` and
``videos.zip``. Read by TIGER-AI-Lab/verl-tool ``examples/data_preprocess/pixel_reasoner/prepare_train.py`` and
TIGER-AI-Lab/Pixel-Reasoner ``curiosity_driven_rl/openrlhf/datasets/prompts_dataset.py``: one row per question with
``question`` (text), ``image`` (a list of paths relative to the folder ``images.zip`` is unpacked into; for videos,
frame paths under ``videos.zip``), ``is_video`` (true for video rows; may be null), ``answer`` (a string or a list
of acceptable strings, possibly wrapped as ``\\boxed{...}`` -- verl-tool's ``verl_tool/workers/reward_manager/
pixel_reasoner.py`` scores the best of a list) and ``qid``. ``--images``: the unpacked ``images.zip`` folder.

``cof`` -- xintongzhang/CoF-RL-Data (Hugging Face; README of xtong-zhang/Chain-of-Focus): the JSON list read by
xtong-zhang/Chain-of-Focus ``verl/recipe/zoomin/data_progress/prepare_zoomin_data.py`` (and its ``_noprompt`` and
``customized_dataset_nips.py`` siblings): objects with ``question`` (multiple-choice options written inside it as
``(A) ...`` or ``A. ...``), ``groundtruth`` (the option letter, or a short answer), ``image_name`` (relative to
their ``--image_root``) and optionally ``data_source``. ``--images``: that image root.

``thinklite`` -- russwang/ThinkLite-VL-hard-11k / -70k (Hugging Face): Parquet rows as si0wang/ThinkLite-VL
``mcts.py`` reads them: ``problem`` (``<image>`` marker, then the question), ``answer`` and ``image`` (the encoded
image's bytes; a ``{"bytes", "path"}`` struct is accepted too); an ``id`` column is used where present (third-party
loaders read one; not in the official code). The images are written out to ``--images`` (default: ``images/``
beside the manifest) as ``thinklite-<id>.<format>``, bytes unchanged.

``visualprobe`` -- Mini-o3/VisualProbe_train (Hugging Face; also VisualProbe_Easy/Medium/Hard ``val.json``): the JSON
list of Mini-o3/Mini-o3 ``docs/mini_o3_demo.md`` and ``verl/utils/dataset/multimodal_dataset.py``: objects with
``images`` (a list of one path relative to ``BASE_IMAGE_DIR``), ``problem`` (``"<image>\\n"`` then the question),
``solution`` (a short answer, sometimes ending in a full stop) and optionally ``doc_id`` and ``data_source``.
``--images``: ``BASE_IMAGE_DIR``; an image not at its path there is looked up by file name in that folder (the
published folder keeps files flat).

Shared rules: a row without one of the format's fields is a one-line error (the file is not in that format), a row
whose field is null is skipped and counted; one image per question (video and multi-image rows are skipped and
counted); ``<image>`` markers are
removed from the question (the export adds the one); an answer ``\\boxed{x}`` becomes ``x``; a question whose options
are written in it as lines ``(A) ...``/``A. ...`` (A, B, ... in order, at least two, optionally under an
``Options:`` label and followed by an instruction line) and whose answer is a letter -- or one option's exact text
-- becomes ``choices`` + the letter, so the reward scores the letter the model names; any other question keeps its
text and a short answer. Ids are ``<format>-<source id>`` (the row number where the source has none). Input files
are ``.parquet`` (a file or a folder of shards), ``.json`` (a list) or ``.jsonl``, whatever the format's usual one.
"""

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

from tqdm import tqdm

from locus_data.errors import UserError
from locus_data.outputs import atomic_write_bytes, check_output
from locus_data.problems import IMAGE_MARKER
from locus_data.vqa import MANIFEST_NAME, VqaItem, write_manifest
from locus_reward.answers import LETTERS


FORMATS = ("pixelreasoner", "cof", "thinklite", "visualprobe")
"""the ``--format`` names, one per public set"""
FIELDS = {
    "pixelreasoner": ("question", "image", "answer"),
    "cof": ("question", "groundtruth", "image_name"),
    "thinklite": ("problem", "answer", "image"),
    "visualprobe": ("problem", "solution", "images"),
}
"""the fields each format's rows must have (named in the one-line error for a row that lacks one)"""
IMAGES_HINT = {
    "thinklite": "the folder its embedded images are written to",
    "pixelreasoner": "the folder images.zip was unpacked into",
    "cof": "the image root the JSON's image_name values are relative to",
    "visualprobe": "Mini-o3's BASE_IMAGE_DIR (the folder the JSON's image paths are relative to)",
}
EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif"}
_OPTION = re.compile(r"^\s*\(?([A-H])(?:\)|[.:])\s*(\S.*?)\s*$")
_LABEL = re.compile(r"(?i)(?:\n\s*(?:options|choices)\s*:?|\b(?:options|choices)\s*:)\s*$")
_INSTRUCTION = re.compile(r"(?i)\b(?:answer|option|letter|choice|choose|select)\b")
_BOXED = re.compile(r"^\s*\\boxed\{(.*)\}\s*$", re.S)


@dataclass
class ConvertReport:
    """What a conversion wrote and skipped."""

    path: Path
    """the manifest written"""
    written: int = 0
    """questions in the manifest"""
    multiple_choice: int = 0
    """of them, questions whose options were split into ``choices``"""
    several_answers: int = 0
    """questions whose source lists several acceptable answers (the first is kept, all in ``all_answers``)"""
    skipped: Counter = field(default_factory=Counter)
    """rows not converted, by reason"""

    def summary(self) -> str:
        skipped = ", ".join(f"{reason} {n}" for reason, n in sorted(self.skipped.items())) or "none"
        return (
            f"wrote {self.written} questions to {self.path} ({self.multiple_choice} multiple choice, "
            f"{self.several_answers} with several answers, first kept); skipped: {skipped}"
        )


def split_options(question: str, answer: str) -> tuple[str, list[str], str] | None:
    """``(question stem, option texts, answer letter)`` when the options are written in the question, else None.

    >>> split_options("What colour is the car?\\nOptions:\\n(A) red\\n(B) blue\\nAnswer with the letter.", "(B)")
    ('What colour is the car?', ['red', 'blue'], 'B')
    >>> split_options("Which sign?\\nA. stop\\nB. yield\\nC. exit", "yield")
    ('Which sign?', ['stop', 'yield', 'exit'], 'B')
    >>> split_options("How many boats?", "3") is None
    True
    """
    lines = question.splitlines()
    start = next((i for i, line in enumerate(lines) if (m := _OPTION.match(line)) and m.group(1) == "A"), None)
    if start is None:
        return None
    options: list[str] = []
    end = start
    while end < len(lines):
        match = _OPTION.match(lines[end])
        if match and len(options) < len(LETTERS) and match.group(1) == LETTERS[len(options)]:
            options.append(match.group(2))
        elif lines[end].strip():  # blank lines between options are fine; any other line ends them
            break
        end += 1
    rest = [line for line in lines[end:] if line.strip()]
    if len(options) < 2 or not all(_INSTRUCTION.search(line) for line in rest):
        return None
    stem = _LABEL.sub("", "\n" + "\n".join(lines[:start]).strip()).strip()  # an "Options:" label goes too
    if not stem:
        return None
    letter = answer.strip().strip("()").rstrip(".").strip().upper()  # "b", "(B)", "B." name option B
    if len(letter) != 1 or letter not in LETTERS[: len(options)]:
        named = [i for i, option in enumerate(options) if option.casefold() == answer.strip().casefold()]
        if len(named) != 1:
            return None
        letter = LETTERS[named[0]]
    return stem, options, letter


def convert(
    fmt: str,
    source: str | Path,
    out: str | Path,
    images: str | Path | None = None,
    *,
    limit: int | None = None,
    skip_bad_images: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> ConvertReport:
    """Convert ``source`` (a file of format ``fmt``) into the manifest ``out`` (a .jsonl file, or a folder that
    receives ``manifest.jsonl``); see the module docstring for ``images``."""
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be >= 1, got {limit}")
    source = Path(source)
    if not source.exists():
        raise UserError(f"{source} does not exist")
    out = Path(out)
    target = out / MANIFEST_NAME if out.is_dir() or not out.suffix else out
    if target.suffix != ".jsonl":
        raise UserError(f"--out {out}: a manifest is a .jsonl file (or a folder to hold {MANIFEST_NAME})")
    check_output(target, [source], what="--out")  # --overwrite replaces an earlier manifest, never the source
    if target.exists() and not overwrite:
        raise UserError(f"{target} exists; pass --overwrite to replace it")
    if fmt == "thinklite":
        image_dir = Path(images) if images is not None else target.parent / "images"
    else:
        if images is None:
            raise UserError(f"--images is required for {fmt}: {IMAGES_HINT[fmt]}")
        image_dir = Path(images)
        if not image_dir.is_dir():
            raise UserError(f"--images {image_dir} is not a folder; pass {IMAGES_HINT[fmt]}")
    report = ConvertReport(target)
    items: list[VqaItem] = []
    seen: Counter = Counter()
    for where, index, raw in tqdm(_raw_rows(source), desc=f"convert {fmt}", unit="row", disable=not progress):
        if limit is not None and len(items) >= limit:
            break
        for name in FIELDS[fmt]:
            if name not in raw:  # another format (a null value in one row is that row's problem, below)
                raise UserError(f"{where}: {name}: missing ({fmt} rows have {', '.join(FIELDS[fmt])})")
        empty = next((name for name in FIELDS[fmt] if raw[name] is None), None)
        record = f"{empty} is null" if empty else _READERS[fmt](raw, index, image_dir, skip_bad_images)
        if isinstance(record, str):
            report.skipped[record] += 1
            continue
        key, image, question, answers, extra = record
        question = question.replace(IMAGE_MARKER, "").strip()
        answers = [_unbox(a) for a in answers if isinstance(a, (str, int, float)) and _unbox(a)]
        if not question or not answers:
            report.skipped["no question" if not question else "no answer"] += 1
            continue
        if len(dict.fromkeys(answers)) > 1:
            report.several_answers += 1
            extra["all_answers"] = list(dict.fromkeys(answers))
        answer, choices = answers[0], None
        split = split_options(question, answer)
        if split is not None:
            question, choices, answer = split
            report.multiple_choice += 1
        seen[key] += 1
        key = key if seen[key] == 1 else f"{key}-{seen[key]}"  # a source id used twice stays two questions
        path, width, height = image
        choices = None if choices is None else tuple(choices)
        items.append(VqaItem(key, path, question, answer, width, height, choices, (), {"source": fmt, **extra}))
    if not items:
        raise UserError(f"{source}: no {fmt} question could be converted ({dict(report.skipped) or 'no rows'})")
    write_manifest(target, items)
    report.written = len(items)
    return report


def _raw_rows(source: Path) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """``(where, row number from 0, row)`` of a .parquet file or folder of shards, a .json list or a .jsonl file."""
    files = sorted(source.glob("*.parquet")) if source.is_dir() else [source]
    if not files:
        raise UserError(f"{source} is a folder without .parquet files")
    index = 0
    for path in files:
        if path.suffix == ".parquet":
            import pyarrow as pa  # heavy: only Parquet sources need it
            import pyarrow.parquet as pq

            try:
                for batch in pq.ParquetFile(path).iter_batches(batch_size=64):  # embedded images: a batch at a time
                    for row in batch.to_pylist():
                        yield f"{path}:row {index}", index, row
                        index += 1
            except (pa.ArrowException, OSError) as err:
                raise UserError(f"{path} is not a readable Parquet file ({err})") from None
        elif path.suffix == ".json":
            try:
                rows = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError, RecursionError) as err:
                raise UserError(f"{path} is not a readable JSON file ({err})") from None
            if not isinstance(rows, list):
                raise UserError(f"{path} holds a JSON {type(rows).__name__}; expected a list of questions")
            for row in rows:
                yield f"{path}:item {index}", index, _object(row, f"{path}:item {index}")
                index += 1
        elif path.suffix == ".jsonl":
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as err:
                raise UserError(f"cannot read {path} ({err})") from None
            for number, line in enumerate(lines, 1):
                if line.strip():
                    try:
                        row = json.loads(line)
                    except (ValueError, RecursionError):
                        raise UserError(f"{path}:{number}: not a JSON object: {line.strip()[:60]!r}") from None
                    yield f"{path}:{number}", index, _object(row, f"{path}:{number}")
                    index += 1
        else:
            raise UserError(f"{path}: expected a .parquet, .json or .jsonl file")


def _object(row: Any, where: str) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise UserError(f"{where}: not a JSON object: {str(row)[:60]!r}")
    return row


def _unbox(answer: Any) -> str:
    text = str(answer).strip()
    match = _BOXED.match(text)
    return match.group(1).strip() if match else text


Record = tuple[str, tuple[Path, int, int], str, list[Any], dict[str, Any]]
"""``(id, (image file, width, height), question, acceptable answers, extra fields)``, or a skip reason"""


def _image_file(path: Path, fmt: str, skip_bad: bool, flat: Path | None = None) -> tuple[Path, int, int] | str:
    """``(file, width, height)`` of ``path`` (or, when missing, ``flat``); a skip reason, or a UserError."""
    from PIL import Image  # heavy: only conversions read image headers

    if not path.is_file() and flat is not None and flat.is_file():
        path = flat
    if not path.is_file():
        if skip_bad:
            return "image missing"
        raise UserError(
            f"image {path} does not exist; --images must be {IMAGES_HINT[fmt]} (or pass --skip-bad-images)"
        )
    try:
        with Image.open(path) as opened:
            return (path, *opened.size)
    except (OSError, ValueError) as err:
        if skip_bad:
            return "image unreadable"
        raise UserError(f"image {path} is not a readable image ({err}); pass --skip-bad-images to skip it") from None


def _pixelreasoner(raw: dict[str, Any], index: int, images: Path, skip_bad: bool) -> Record | str:
    if raw.get("is_video") is True:
        return "video"
    paths = raw["image"] if isinstance(raw["image"], list) else [raw["image"]]
    if len(paths) != 1:
        return "several images" if paths else "no image"
    image = _image_file(images / str(paths[0]), "pixelreasoner", skip_bad)
    if isinstance(image, str):
        return image
    answers = raw["answer"] if isinstance(raw["answer"], list) else [raw["answer"]]
    key = str(raw["qid"]) if raw.get("qid") is not None else f"{index:06d}"
    return f"pixelreasoner-{key}", image, str(raw["question"]), answers, {"source_id": key}


def _cof(raw: dict[str, Any], index: int, images: Path, skip_bad: bool) -> Record | str:
    image = _image_file(images / str(raw["image_name"]), "cof", skip_bad)
    if isinstance(image, str):
        return image
    extra = {"source_id": f"{index:06d}"}
    if raw.get("data_source") is not None:
        extra["data_source"] = str(raw["data_source"])
    return f"cof-{index:06d}", image, str(raw["question"]), [raw["groundtruth"]], extra


def _thinklite(raw: dict[str, Any], index: int, images: Path, skip_bad: bool) -> Record | str:
    from PIL import Image  # heavy: only embedded images are sniffed

    data = raw["image"]["bytes"] if isinstance(raw["image"], dict) else raw["image"]
    key = str(raw["id"]) if raw.get("id") is not None else f"{index:06d}"
    try:
        with Image.open(BytesIO(data)) as opened:
            extension = EXTENSIONS.get(opened.format or "", f".{(opened.format or 'img').lower()}")
            size = opened.size
    except (OSError, ValueError, TypeError) as err:
        if skip_bad:
            return "image unreadable"
        raise UserError(f"thinklite row {index} (id {key}): image bytes do not open ({err})") from None
    path = images / (re.sub(r"[^A-Za-z0-9._-]", "_", f"thinklite-{key}") + extension)
    if not (path.is_file() and path.read_bytes() == data):  # a rerun rewrites nothing
        images.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)
    return f"thinklite-{key}", (path, *size), str(raw["problem"]), [raw["answer"]], {"source_id": key}


def _visualprobe(raw: dict[str, Any], index: int, images: Path, skip_bad: bool) -> Record | str:
    paths = raw["images"] if isinstance(raw["images"], list) else [raw["images"]]
    if len(paths) != 1:
        return "several images" if paths else "no image"
    image = _image_file(images / str(paths[0]), "visualprobe", skip_bad, flat=images / Path(str(paths[0])).name)
    if isinstance(image, str):
        return image
    key = str(raw["doc_id"]) if raw.get("doc_id") is not None else f"{index:06d}"
    extra = {"source_id": key}
    if raw.get("data_source") is not None:
        extra["data_source"] = str(raw["data_source"])
    return f"visualprobe-{key}", image, str(raw["problem"]), [raw["solution"]], extra


_READERS = {"pixelreasoner": _pixelreasoner, "cof": _cof, "thinklite": _thinklite, "visualprobe": _visualprobe}
