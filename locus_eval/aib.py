"""Attention-in-Box (AIB): how much of the model's attention to the image falls on the evidence (Fig. 4, 5, 8).

Per example, following the paper's appendix:

1. Generate greedily. The *answer token* is the first non-whitespace token after ``<answer>`` when the response has
   one, else the first generated token (``answer_source`` records which).
2. Run one forward pass over prompt + generated prefix and take, in every decoder layer, the attention row of the
   last position (the one that predicts the answer token), averaged over heads. By default (``attention="probe"``)
   the forward runs with SDPA (or flash attention) and the row is computed from the query at that one position
   and the keys exactly as the kernel receives them (after projection, q/k norm and RoPE; grouped-query layout;
   the module's own ``scaling``; softmax in float32), so memory stays O(sequence) instead of materialising every
   layer's L x L weights. ``attention="eager"`` keeps the old ``output_attentions`` path as a cross-check.
3. Keep the columns of the first image's patch tokens (the first ``<|image_pad|>`` run: the full image) and reshape
   them to the merged token grid ``(h / merge, w / merge)`` from ``image_grid_thw``.
4. Project the GT boxes onto that grid through the seen frame (``frames.seen_size`` with the run's pixel limits,
   then divided by patch x merge); a cell counts when it overlaps a box with positive area.

Per layer, the map is normalized to sum to 1 over the image and AIB is the share inside the box cells. The mean AIB
comes from the layer-averaged normalized map (every layer weighs the same, whatever share of its attention goes to
text or sink tokens), and Peak-in-Box is 1 when that map's maximum cell lies in a box.
"""

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from locus_agent.processor import load_processor, pixel_limits
from locus_data.config import split_path
from locus_data.errors import UserError
from locus_eval import plots
from locus_eval.benchmarks.prompts import mcq_prompt
from locus_eval.benchmarks.vstar import load_vstar
from locus_eval.cue_search import load_examples
from locus_reward import frames
from locus_reward.ground_truth import loads
from locus_train.images import process_image
from locus_train.prompting import chat_prompt, load_format_prompt


ANSWER_TAG = "<answer>"
ATTENTION_MODES = ("probe", "eager")


def box_cell_mask(
    boxes: list[tuple[float, float, float, float]],
    width: int,
    height: int,
    seen_width: int,
    seen_height: int,
    cell: int,
) -> np.ndarray:
    """Boolean ``(seen_height / cell, seen_width / cell)`` grid: True where a cell overlaps one of ``boxes``.

    ``boxes`` are in pixels of the stored ``width x height`` image; the model sees ``seen_width x seen_height`` and
    each merged token covers ``cell x cell`` seen pixels. Touching a cell's edge is not overlapping it.

    >>> box_cell_mask([(0.0, 0.0, 10.0, 10.0)], 100, 100, 100, 100, 25).astype(int)
    array([[1, 0, 0, 0],
           [0, 0, 0, 0],
           [0, 0, 0, 0],
           [0, 0, 0, 0]])
    """
    rows, cols = seen_height // cell, seen_width // cell
    mask = np.zeros((rows, cols), dtype=bool)
    sx, sy = seen_width / width, seen_height / height
    for x1, y1, x2, y2 in boxes:
        # cell j spans [j * cell, (j + 1) * cell): it overlaps (a, b) when j * cell < b and (j + 1) * cell > a
        c0, c1 = max(0, math.floor(x1 * sx / cell)), min(cols, math.ceil(x2 * sx / cell))
        r0, r1 = max(0, math.floor(y1 * sy / cell)), min(rows, math.ceil(y2 * sy / cell))
        mask[r0:r1, c0:c1] = True
    return mask


def aib_scores(maps: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    """Per-layer AIB, mean AIB and Peak-in-Box from ``(layers, rows, cols)`` attention maps and a box mask."""
    totals = maps.reshape(len(maps), -1).sum(-1)
    normalized = maps / np.where(totals > 0, totals, 1.0)[:, None, None]
    mean_map = normalized.mean(0)
    peak = np.unravel_index(int(mean_map.argmax()), mean_map.shape)
    return {
        "aib_per_layer": [float(layer[mask].sum()) for layer in normalized],
        "mean_aib": float(mean_map[mask].sum() / max(mean_map.sum(), 1e-12)),
        "peak_in_box": float(mask[peak]),
        "mean_map": mean_map,
    }


def first_run(ids: list[int], token_id: int) -> tuple[int, int]:
    """``(start, end)`` of the first contiguous run of ``token_id`` in ``ids``.

    >>> first_run([1, 5, 5, 5, 2, 5, 5], 5)
    (1, 4)
    """
    start = ids.index(token_id)
    end = start
    while end < len(ids) and ids[end] == token_id:
        end += 1
    return start, end


def answer_token_index(tokenizer: Any, ids: list[int]) -> tuple[int | None, str]:
    """Index in ``ids`` of the answer token and how it was found (``answer_tag`` or ``first_token``).

    None when the response ends right after ``<answer>`` (nothing to attribute).
    """
    for k in range(1, len(ids) + 1):
        if ANSWER_TAG in tokenizer.decode(ids[:k]):
            while k < len(ids) and not tokenizer.decode(ids[k : k + 1]).strip():
                k += 1  # the box starts at the first visible character, not at a newline
            return (k if k < len(ids) else None), "answer_tag"
    return (0 if ids else None), "first_token"


@dataclass
class AIBItem:
    """One prompt whose first image has GT boxes."""

    index: int
    """position in the data file"""
    name: str
    """id shown in figures"""
    problem: str
    """dataset-style text with ``<image>`` markers"""
    images: list[Any]
    """images in marker order (bytes, paths or structs); the first is the one analysed"""
    boxes: list[tuple[float, float, float, float]]
    """GT boxes in pixels of the first image"""


def load_items(data: str | Path, limit: int | None = None) -> list[AIBItem]:
    """Cue-search parquet (GT = the cue's window) or a V* folder (GT = the target objects' boxes)."""
    data = Path(data)
    if data.is_dir() and split_path(data, "val").is_file():
        raise UserError(f"{data} is a LOCUS dataset folder; --data is its split file, e.g. {split_path(data, 'val')}")
    if data.is_dir():
        return [
            AIBItem(it.index, it.name, mcq_prompt(it), [it.image], [tuple(b) for b in it.boxes])
            for it in load_vstar(data)[:limit]
        ]

    return [
        AIBItem(
            e.index, str(e.image_id if e.image_id is not None else e.index), e.problem, e.images, [loads(e.answer).box]
        )
        for e in load_examples(data, limit)
    ]


def decoder_layers(model: Any) -> list[Any]:
    """The text decoder layers of a Qwen-VL model (the vision tower's attention is not analysed)."""
    return list(model.get_decoder().layers)


def answer_row(query: Any, key: Any, attention_mask: Any, scaling: float) -> Any:
    """Head-averaged softmax row of the last query position: ``(batch, keys)`` in float32.

    ``query`` is ``(batch, heads, q_len, dim)`` and ``key`` ``(batch, kv_heads, k_len, dim)``, both after RoPE, as an
    attention kernel receives them. Head ``h`` reads kv head ``h // (heads / kv_heads)`` (transformers' ``repeat_kv``
    layout); grouping the query heads instead of repeating the keys keeps memory at one ``(heads, k_len)`` score
    block. The last position sees every key (causal), so only an explicit mask (padding) removes columns.
    """
    import torch  # heavy: loaded only when a model runs

    batch, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    q = query[:, :, -1].float().reshape(batch, kv_heads, heads // kv_heads, dim)
    scores = torch.einsum("bgrd,bgkd->bgrk", q, key.float()) * scaling
    if attention_mask is not None:
        row = attention_mask[:, :, -1, : key.shape[-2]].reshape(batch, 1, 1, -1)
        scores = scores.masked_fill(~row, float("-inf")) if row.dtype == torch.bool else scores + row.float()
    return torch.softmax(scores, dim=-1).reshape(batch, heads, -1).mean(1)


@contextmanager
def answer_row_capture(model: Any) -> Iterator[list[Any]]:
    """While active, every decoder layer's attention call also stores its :func:`answer_row` (batch 0).

    The hook wraps the attention function transformers looks up on each call (``ALL_ATTENTION_FUNCTIONS[impl]``),
    so it sees the very query/key tensors and ``scaling`` the kernel gets, whatever the model's q/k norm or RoPE
    variant; calls from modules other than the decoder layers (the vision tower) pass through untouched.
    """
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS  # heavy: loaded only when a model runs

    layers = {id(layer.self_attn): i for i, layer in enumerate(decoder_layers(model))}
    impl = model.get_decoder().config._attn_implementation
    if impl not in ALL_ATTENTION_FUNCTIONS:
        raise RuntimeError(
            f"the answer-row probe hooks a registered attention kernel (sdpa, flash_attention_2); the model runs "
            f"{impl!r}. Load it with attn_implementation='sdpa', or use --attention eager"
        )
    original = ALL_ATTENTION_FUNCTIONS[impl]
    had_local = impl in ALL_ATTENTION_FUNCTIONS._local_mapping
    rows: list[Any] = [None] * len(layers)

    def capture(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, *args: Any, **kwargs: Any):
        index = layers.get(id(module))
        if index is not None:
            scaling = kwargs.get("scaling")
            rows[index] = answer_row(query, key, attention_mask, module.scaling if scaling is None else scaling)[0]
        return original(module, query, key, value, attention_mask, *args, **kwargs)

    ALL_ATTENTION_FUNCTIONS[impl] = capture
    try:
        yield rows
    finally:
        if had_local:
            ALL_ATTENTION_FUNCTIONS[impl] = original
        else:
            del ALL_ATTENTION_FUNCTIONS[impl]


def layer_rows(model: Any, inputs: dict[str, Any], attention: str = "probe") -> Any:
    """``(layers, L)`` float32: per decoder layer, the head-averaged attention row of the last input position.

    ``probe`` runs the model's own kernel (SDPA / flash) and captures the row; ``eager`` switches the text decoder to
    eager attention for this one forward and reads ``output_attentions`` (every layer's L x L weights: a cross-check
    for short inputs). The vision tower keeps its kernel either way: its attention is not analysed.
    """
    import torch  # heavy: loaded only when a model runs

    if attention not in ATTENTION_MODES:
        raise ValueError(f"unknown attention mode {attention!r}; expected one of {', '.join(ATTENTION_MODES)}")
    # one logit is enough (the full (L, vocab) logits alone are GBs at native resolution); no cache to build
    forward = {**inputs, "use_cache": False, "logits_to_keep": 1}
    if attention == "probe":
        with torch.inference_mode(), answer_row_capture(model) as rows:
            model(**forward)
        if any(row is None for row in rows):
            raise RuntimeError("some decoder layers were not captured: the model does not use the attention interface")
        return torch.stack(rows)
    text_impl = model.get_decoder().config._attn_implementation
    model.set_attn_implementation({"text_config": "eager"})
    try:
        with torch.inference_mode():
            attentions = model(**forward, output_attentions=True).attentions
    finally:
        model.set_attn_implementation({"text_config": text_impl})
    if not attentions or any(a is None for a in attentions):
        raise RuntimeError(
            "the model returned no attention weights; the eager cross-check needs attn_implementation='eager' "
            f"(got {model.get_decoder().config._attn_implementation!r})"
        )
    return torch.stack([a[0, :, -1].float().mean(0) for a in attentions])


class AttentionProbe:
    """A checkpoint loaded with SDPA attention; the answer row comes from :func:`layer_rows` (probe or eager)."""

    def __init__(
        self, model_path: str | Path, min_pixels: int | None, max_pixels: int | None, attention: str = "probe"
    ):
        import torch  # heavy: loaded only when a model runs
        from transformers import AutoModelForImageTextToText  # heavy: loaded only when a model runs

        if attention not in ATTENTION_MODES:
            raise ValueError(f"unknown attention mode {attention!r}; expected one of {', '.join(ATTENTION_MODES)}")
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        self.processor = load_processor(model_path)
        # generation and the probe forward run SDPA; only --attention eager switches the decoder for its one forward
        self.model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=dtype, attn_implementation="sdpa")
        self.model.to(self.device).eval()
        self.attention = attention
        self.min_pixels, self.max_pixels = min_pixels, max_pixels
        model_type = getattr(self.model.config, "model_type", "")
        self.coord_frame = "qwen3_vl" if model_type.startswith("qwen3") else "qwen2_5_vl"

    def analyse(self, item: AIBItem, format_prompt: str | None, max_new_tokens: int) -> dict[str, Any] | None:
        import torch  # heavy: loaded only when a model runs

        images = [
            process_image(image, self.min_pixels, self.max_pixels, f"{item.name} image {i}")
            for i, image in enumerate(item.images)
        ]
        prompt = chat_prompt(self.processor, item.problem, format_prompt)
        inputs = self.processor(text=[prompt], images=images, add_special_tokens=False, return_tensors="pt")
        inputs = inputs.to(self.device)
        with torch.inference_mode():
            generated = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        new_ids = generated[0, inputs["input_ids"].shape[1] :].tolist()
        position, source = answer_token_index(self.processor.tokenizer, new_ids)
        if position is None:
            return None
        prefix = torch.tensor([new_ids[:position]], dtype=inputs["input_ids"].dtype, device=self.device)
        input_ids = torch.cat([inputs["input_ids"], prefix], dim=1)
        forward = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask")}
        rows = layer_rows(
            self.model,
            {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), **forward},
            self.attention,
        )

        # the full image's tokens: first <|image_pad|> run, row-major over the merged (h, w) grid
        start, end = first_run(input_ids[0].tolist(), self.model.config.image_token_id)
        image_processor = self.processor.image_processor
        merge, patch = image_processor.merge_size, image_processor.patch_size
        t, h, w = (int(v) for v in inputs["image_grid_thw"][0])
        grid_rows, cols = h // merge, w // merge
        if end - start != t * grid_rows * cols:
            raise RuntimeError(
                f"{end - start} image tokens for a {t}x{grid_rows}x{cols} grid: unexpected prompt layout"
            )
        maps = layer_rows_to_maps(rows, start, end, t, grid_rows, cols)

        width, height = _original_size(item.images[0])  # GT boxes are in pixels of the file, before any resize
        proc_min, proc_max = pixel_limits(self.processor)
        seen_w, seen_h = frames.seen_size(
            width, height, self.coord_frame, self.min_pixels, self.max_pixels, proc_min, proc_max
        )
        if (seen_w, seen_h) != (w * patch, h * patch):
            raise RuntimeError(
                f"seen frame {seen_w}x{seen_h} != processor grid {w * patch}x{h * patch}: pixel limits disagree"
            )
        mask = box_cell_mask(item.boxes, width, height, seen_w, seen_h, patch * merge)
        scores = aib_scores(maps, mask)
        return {
            **scores,
            "answer_token": self.processor.tokenizer.decode(new_ids[position : position + 1]),
            "answer_source": source,
            "grid": [grid_rows, cols],
            "mask": mask,
            "seen_image": images[0].resize((seen_w, seen_h)),
            "boxes_seen": [
                (x1 * seen_w / width, y1 * seen_h / height, x2 * seen_w / width, y2 * seen_h / height)
                for x1, y1, x2, y2 in item.boxes
            ],  # fmt: skip
            "response": self.processor.tokenizer.decode(new_ids, skip_special_tokens=True),
        }


def layer_rows_to_maps(rows: Any, start: int, end: int, t: int, grid_rows: int, cols: int) -> np.ndarray:
    """``(layers, grid_rows, cols)`` maps: the image-token columns of each layer's row on the merged grid (frame 0)."""
    return rows[:, start:end].reshape(len(rows), t, grid_rows, cols)[:, 0].cpu().numpy()


def _original_size(image: Any) -> tuple[int, int]:
    return process_image(image, None, None).size


def run(
    model: str | Path,
    data: str | Path,
    out_dir: str | Path,
    min_pixels: int | None,
    max_pixels: int | None,
    max_new_tokens: int = 1024,
    limit: int | None = None,
    format_prompt_path: str | Path | None = None,
    save_maps: int = 8,
    attention: str = "probe",
) -> dict[str, Any]:
    """Analyse every item; write ``aib.jsonl``, ``summary.json``, ``maps/*.npz`` and the two figures."""

    out_dir = Path(out_dir)
    items = load_items(data, limit)
    (out_dir / "maps").mkdir(parents=True, exist_ok=True)
    format_prompt = load_format_prompt(format_prompt_path)
    probe = AttentionProbe(model, min_pixels, max_pixels, attention)
    rows, skipped = [], 0
    with (out_dir / "aib.jsonl").open("w", encoding="utf-8") as f:
        for item in tqdm(items, desc="aib"):
            result = probe.analyse(item, format_prompt, max_new_tokens)
            if result is None:
                skipped += 1
                continue
            row = {"index": item.index, "name": item.name}
            row.update({k: v for k, v in result.items() if k not in ("mean_map", "mask", "seen_image", "boxes_seen")})
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            rows.append(row)
            if len(rows) <= save_maps:
                np.savez_compressed(
                    out_dir / "maps" / f"{item.index}.npz",
                    map=result["mean_map"],
                    mask=result["mask"],
                    image=np.asarray(result["seen_image"]),
                    boxes=np.asarray(result["boxes_seen"], dtype=float),
                    name=item.name,
                )
    per_layer = np.asarray([r["aib_per_layer"] for r in rows]) if rows else np.zeros((0, 0))
    summary = {
        "model": str(model),
        "data": str(data),
        "attention": attention,
        "n": len(rows),
        "skipped_no_answer_token": skipped,
        "mean_aib": float(np.mean([r["mean_aib"] for r in rows])) if rows else float("nan"),
        "peak_in_box": float(np.mean([r["peak_in_box"] for r in rows])) if rows else float("nan"),
        "aib_per_layer": per_layer.mean(0).tolist() if rows else [],
        "answer_sources": {s: sum(r["answer_source"] == s for r in rows) for s in ("answer_tag", "first_token")},
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if rows:
        plots.plot_aib_runs([out_dir], out_dir)
    return summary
