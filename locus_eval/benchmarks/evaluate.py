"""One benchmark run: load its items, generate (resuming), score, and write the report with its protocol."""

import sys
from pathlib import Path
from typing import Any

from locus_agent import backends
from locus_agent.backends import Request
from locus_agent.processor import load_processor
from locus_data.errors import UserError
from locus_data.images import open_image
from locus_eval.benchmarks.hrbench import read_hrbench
from locus_eval.benchmarks.items import Item, Loaded
from locus_eval.benchmarks.prompts import GROUNDING_PROMPT, mcq_prompt
from locus_eval.benchmarks.refcoco import read_refcoco
from locus_eval.benchmarks.scoring import grounding_metrics, score_grounding, score_mcq
from locus_eval.benchmarks.vstar import read_vstar
from locus_eval.metrics import mcq_metrics, mcq_table, percent, save_report
from locus_eval.predictions import run_manifest
from locus_eval.runner import GenerationConfig, generate_missing, seen_limits
from locus_train.images import process_image
from locus_train.prompting import chat_prompt


BENCHMARKS = ("vstar", "hrbench", "refcoco")

EXPECTED_DATA = {
    "vstar": "the V* folder (direct_attributes/, relative_position/) or its test_questions.jsonl",
    "hrbench": "an HR-Bench TSV file (hr_bench_4k.tsv or hr_bench_8k.tsv)",
    "refcoco": "a RefCOCO .parquet (lmms-lab) or .jsonl file",
}


def load(benchmark: str, data: str | Path, seed: int = 0) -> Loaded:
    """Items and protocol of a benchmark by name (``vstar``, ``hrbench``, ``refcoco``)."""
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; expected one of {', '.join(BENCHMARKS)}")
    data = Path(data)
    if not data.exists():
        raise UserError(f"{data}: no such file or directory; --data for {benchmark} is {EXPECTED_DATA[benchmark]}")
    if benchmark != "vstar" and data.is_dir():
        raise UserError(f"{data} is a directory; --data for {benchmark} is {EXPECTED_DATA[benchmark]}")
    if benchmark == "vstar":
        loaded = read_vstar(data, seed)
    else:
        loaded = read_hrbench(data) if benchmark == "hrbench" else read_refcoco(data)
    if not loaded.items:
        raise UserError(f"{data} holds no {benchmark} items; --data for {benchmark} is {EXPECTED_DATA[benchmark]}")
    return loaded


def protocol_note(protocol: dict[str, Any]) -> str:
    """One Markdown line under the table saying which protocol produced the number."""
    parts = [f"{key.replace('_', ' ')}: {value}" for key, value in protocol.items() if value is not None]
    return "Protocol: " + "; ".join(parts) + "."


def run(
    benchmark: str,
    data: str | Path,
    model: str | Path,
    out_dir: str | Path,
    backend: str,
    coord_frame: str,
    generation: GenerationConfig,
    limit: int | None = None,
    seed: int = 0,
    backend_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Generate (resuming) and score one benchmark; writes predictions, scores.jsonl, metrics.json, table.md."""
    loaded = load(benchmark, data, seed)
    items, protocol = loaded.items[:limit], loaded.protocol
    if benchmark == "refcoco":
        published = protocol["published_expressions"]
        compare = f"; refcoco_bbox_rec_{protocol['split']} scores {published}" if published else ""
        print(
            f"{protocol['dataset']} {protocol['split']} ({protocol['layout']}): {protocol['objects']} objects, "
            f"{protocol['expressions']} expressions{compare}",
            file=sys.stderr,
        )
    processor = load_processor(model)
    settings = run_manifest(f"bench-{benchmark}", model, data, backend, generation, seed=seed)
    grounding = benchmark == "refcoco"

    def make_request(_backend: Any, item: Item) -> Request:
        problem = "<image>\n" + GROUNDING_PROMPT.format(refexp=item.question) if grounding else mcq_prompt(item)
        image = process_image(
            item.image, generation.pixels.min_pixels, generation.pixels.max_pixels, f"{data} item {item.name}"
        )
        return Request(chat_prompt(processor, problem), [image])

    predictions = generate_missing(
        out_dir,
        items,
        settings,
        make_backend=lambda: backends.load_backend(backend, model, limit_images=1, **(backend_kwargs or {})),
        make_request=make_request,
        record=lambda item: {"index": item.index, "name": item.name},
        generation=generation,
        desc=benchmark,
    )
    label = Path(model).name
    if grounding:
        sizes = {item.index: open_image(item.image).size for item in items}
        rows = score_grounding(items, predictions, sizes, coord_frame, seen_limits(generation, processor).pixel_kwargs)
        metrics = {**grounding_metrics(rows), "coord_frame": coord_frame, "acc_rule": "iou >= 0.5"}
        metrics["objects"] = len({item.object_id for item in items})
        table = "\n".join(
            [
                "| Model | ACC@0.5 | ACC@0.5 (IoU > 0.5) | Mean IoU |",
                "|---|---|---|---|",
                f"| {label} | {percent(metrics['acc50'])} | {percent(metrics['acc50_strict'])} "
                f"| {percent(metrics['mean_iou'])} |",
            ]
        )
    else:
        rows = score_mcq(items, predictions)
        metrics = mcq_metrics(rows, cycles=benchmark == "hrbench")
        table = mcq_table(label, metrics)
    metrics = {**metrics, "protocol": protocol}
    save_report(out_dir, rows, metrics, table + "\n\n" + protocol_note(protocol))
    return metrics
