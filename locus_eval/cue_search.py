"""Proxy-task validation (Table 10): generate boxes for the cue-search split, then score them with the reward's code.

Prompts are built as in training (format prompt, ``<image>`` split, chat template, EasyR1's pixel limits). Scoring
calls :func:`locus_reward.cue_search.score_response` for every saved response, so parsing, the coordinate frame and
IoU have one implementation shared with the reward.
"""

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from locus_agent import backends
from locus_agent.backends import Request
from locus_agent.processor import load_processor
from locus_data.config import SPLITS, split_path
from locus_data.rows import read_batches
from locus_data.schema import ANN_ID, ANSWER, EASYR1_COLUMNS, IMAGE_ID, IMAGES, PROBLEM, SIZE_BIN
from locus_eval.metrics import box_metrics, save_report, table10
from locus_eval.predictions import run_manifest
from locus_eval.runner import GenerationConfig, generate_missing, seen_limits
from locus_reward.cue_search import score_response
from locus_reward.ground_truth import loads as load_ground_truth
from locus_reward.options import FrameOptions
from locus_train.images import process_image
from locus_train.prompting import chat_prompt, load_format_prompt
from locus_train.prompting import think_prefilled as prefilled


@dataclass
class CueExample:
    """One row of a cue-search parquet (``locus-data build`` output)."""

    index: int
    """row number in the file; predictions refer to it"""
    problem: str
    """question text with two ``<image>`` markers (full image, cue)"""
    images: list[Any]
    """``{"bytes", "path"}`` structs in marker order"""
    answer: str
    """ground-truth JSON (box in stored full-image pixels, image size)"""
    image_id: Any = None
    """source image id (metadata, saved with each prediction)"""
    ann_id: Any = None
    """source annotation id (metadata)"""
    size_bin: str | None = None
    """tiny / small / large cue, for the per-bin columns"""


METADATA = (IMAGE_ID, ANN_ID, SIZE_BIN)
"""the metadata columns an example keeps, where the file has them"""


def load_examples(path: str | Path, limit: int | None = None) -> list[CueExample]:
    """Read a cue-search parquet; every ``answer`` is validated up front so a broken split fails before a long run."""
    val = split_path(path, SPLITS[1])
    if Path(path).is_dir() and val.is_file():
        raise ValueError(f"{path} is a LOCUS dataset folder; --data is its split file, e.g. {val}")
    rows = [
        row
        for batch in read_batches(path, EASYR1_COLUMNS, optional=METADATA, limit=limit or None)
        for row in batch.to_pylist()
    ]
    if not rows:
        raise ValueError(f"{path} has no rows; --data is a cue-search parquet with examples (DATASET/val.parquet)")
    examples = []
    for index, row in enumerate(rows):
        try:
            load_ground_truth(row[ANSWER])
        except ValueError as err:
            raise ValueError(f"{path} row {index}: {err}") from err
        examples.append(
            CueExample(
                index=index,
                problem=row[PROBLEM],
                images=row[IMAGES],
                answer=row[ANSWER],
                image_id=row.get(IMAGE_ID),
                ann_id=row.get(ANN_ID),
                size_bin=row.get(SIZE_BIN),
            )
        )
    return examples


def score_predictions(
    examples: list[CueExample],
    predictions: dict[int, dict[str, Any]],
    config: FrameOptions,
    allow_partial: bool = False,
) -> list[dict[str, Any]]:
    """Per-example reward scores (iou, acc50, acc75, format, parse_fail) for every example with a prediction.

    ``config`` says how responses are read back into boxes: the training reward's frame options, with the pixel
    limits the run generated with and its processor's own.

    Missing predictions raise unless ``allow_partial``; a prediction whose ``image_id`` disagrees with the data
    raises, since it was made for another file.
    """

    indices = {e.index for e in examples}
    extra = sorted(set(predictions) - indices)
    if extra:
        raise ValueError(
            f"{len(extra)} prediction(s) have no row in the data (indices {extra[:5]}, the data has {len(examples)} "
            "rows): predictions and --data do not belong together"
        )
    missing = [e.index for e in examples if e.index not in predictions]
    if missing and not allow_partial:
        raise ValueError(
            f"{len(missing)} of {len(examples)} examples have no prediction (first: {missing[:5]}); finish the run "
            "or pass --allow-partial"
        )
    rows = []
    for example in examples:
        prediction = predictions.get(example.index)
        if prediction is None:
            continue
        saved_id = prediction.get(IMAGE_ID)
        if saved_id is not None and example.image_id is not None and saved_id != example.image_id:
            raise ValueError(
                f"prediction {example.index} is for image {saved_id!r} but the data has {example.image_id!r}: "
                "predictions and --data do not belong together"
            )
        scores = score_response(prediction["response"], example.answer, **dataclasses.asdict(config))
        row = {"index": example.index, IMAGE_ID: example.image_id, SIZE_BIN: example.size_bin}
        row.update({key: scores[key] for key in ("iou", "acc50", "acc75", "format", "parse_fail")})
        if "finished" in prediction:
            row["finished"] = prediction["finished"]
        rows.append(row)
    if not rows:
        raise ValueError("no example has a prediction: nothing to score")
    return rows


def write_report(
    out_dir: str | Path, rows: list[dict[str, Any]], config: FrameOptions, label: str, extra: dict | None = None
) -> dict[str, Any]:
    """Write ``scores.jsonl``, ``metrics.json`` (plus ``extra`` keys) and ``table.md`` into ``out_dir``."""
    metrics = {**box_metrics(rows), "acc_rule": "iou >= threshold", "scoring": dataclasses.asdict(config)}
    metrics.update(extra or {})
    save_report(out_dir, rows, metrics, table10({label: metrics}))
    return metrics


def run(
    model: str | Path,
    data: str | Path,
    out_dir: str | Path,
    backend: str,
    coord_frame: str,
    format_prompt_path: str | Path | None,
    generation: GenerationConfig,
    limit: int | None = None,
    backend_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Generate (resuming) and score; returns the metrics written to ``out_dir/metrics.json``."""
    examples = load_examples(data, limit)
    format_prompt = load_format_prompt(format_prompt_path)
    processor = load_processor(model)  # cheap, and fixes the prompt and frame before any model is loaded
    probe = chat_prompt(processor, examples[0].problem if examples else "", format_prompt)
    limits = seen_limits(generation, processor)
    settings = run_manifest(
        "cue-search",
        model,
        data,
        backend,
        generation,
        format_prompt=format_prompt,
        processor_min_pixels=limits.processor_min_pixels,
        processor_max_pixels=limits.processor_max_pixels,
        think_prefilled=prefilled(probe),
    )

    def make_request(_backend: Any, example: CueExample) -> Request:
        images = [
            process_image(image, limits.min_pixels, limits.max_pixels, f"{data} row {example.index} image {i}")
            for i, image in enumerate(example.images)
        ]
        return Request(chat_prompt(processor, example.problem, format_prompt), images)

    def record(example: CueExample) -> dict[str, Any]:
        return {"index": example.index, IMAGE_ID: example.image_id, ANN_ID: example.ann_id}

    predictions = generate_missing(
        out_dir,
        examples,
        settings,
        make_backend=lambda: backends.load_backend(backend, model, limit_images=2, **(backend_kwargs or {})),
        make_request=make_request,
        record=record,
        generation=generation,
        desc="cue-search",
    )
    config = FrameOptions(coord_frame=coord_frame, think_prefilled=settings["think_prefilled"], **limits.pixel_kwargs)
    rows = score_predictions(examples, predictions, config)
    return write_report(out_dir, rows, config, label=Path(model).name)
