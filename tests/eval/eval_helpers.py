"""Small files in the formats locus_eval reads, written by tests (no downloads, no real benchmark data)."""

import io
import json
import struct
import zlib
from pathlib import Path

from PIL import Image


def jpeg_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def scene(width: int, height: int, seed: int = 0) -> Image.Image:
    """A deterministic colourful picture (gradients plus a few rectangles)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), (x + y) % 256], -1)
    for _ in range(4):
        x0, y0 = int(rng.integers(0, width - 8)), int(rng.integers(0, height - 8))
        pixels[y0 : y0 + 8 + int(rng.integers(0, 40)), x0 : x0 + 8 + int(rng.integers(0, 40))] = rng.integers(
            0, 255, 3
        )
    return Image.fromarray(pixels.astype("uint8"))


PROBLEM = "<image>\nThis is the full image.\n<image>\nThis is the cue.\nGive its box."


def write_val_parquet(path: Path, examples: list[dict]) -> Path:
    """A cue-search parquet in the builder's contract.

    ``examples``: dicts with ``size`` (W, H), ``box`` (x1, y1, x2, y2 in stored pixels) and optional ``size_bin``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = []
    for i, example in enumerate(examples):
        width, height = example["size"]
        full = scene(width, height, seed=i)
        x1, y1, x2, y2 = example["box"]
        crop = full.crop((int(x1), int(y1), int(x2), int(y2)))
        rows.append(
            {
                "problem": PROBLEM,
                "images": [
                    {"bytes": jpeg_bytes(full), "path": f"full_{i}.jpg"},
                    {"bytes": jpeg_bytes(crop), "path": ""},
                ],
                "answer": json.dumps({"box": [float(v) for v in example["box"]], "width": width, "height": height}),
                "image_id": 1000 + i,
                "ann_id": 2000 + i,
                "size_bin": example.get("size_bin", "small"),
                "cue_source": "object",
                "area_ratio": (x2 - x1) * (y2 - y1) / (width * height),
            }
        )
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_predictions(path: Path, responses: list[str], image_ids: list[int] | None = None) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for i, response in enumerate(responses):
            record = {"index": i, "response": response}
            if image_ids is not None:
                record["image_id"] = image_ids[i]
            f.write(json.dumps(record) + "\n")
    return path


def write_vstar(root: Path, questions: dict[str, list[dict]]) -> Path:
    """A V*Bench folder: ``<category>/<name>.jpg`` + ``<name>.json`` with the correct option listed first."""
    for category, entries in questions.items():
        folder = root / category
        folder.mkdir(parents=True, exist_ok=True)
        for i, entry in enumerate(entries):
            name = f"sa_{i}"
            scene(entry.get("width", 96), entry.get("height", 64), seed=i).save(folder / f"{name}.jpg")
            ann = {
                "target_object": entry.get("targets", ["thing"]),
                "bbox": entry.get("bbox", [[8, 8, 16, 16]]),
                "question": entry["question"],
                "options": entry["options"],
            }
            (folder / f"{name}.json").write_text(json.dumps(ann))
    return root


def write_hrbench(path: Path, rows: list[dict]) -> Path:
    """An HR-Bench TSV: index, question, answer, category, A-D, image, cycle_category.

    A row with ``image_ref`` (another row's index) stores that index instead of base64, as VLMEvalKit's TSVs do to
    keep each image once; ``image_cell`` writes a raw cell verbatim (for broken files).
    """
    import base64
    import csv

    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(["index", "question", "answer", "category", "A", "B", "C", "D", "image", "cycle_category"])
        for i, row in enumerate(rows):
            image = base64.b64encode(jpeg_bytes(scene(64, 48, seed=i))).decode()
            if "image_ref" in row:
                image = str(row["image_ref"])
            image = row.get("image_cell", image)
            writer.writerow([i, row["question"], row["answer"], row["category"], *row["options"], image, row["cycle"]])
    return path


def write_vstar_jsonl(root: Path, rows: list[dict]) -> Path:
    """V*'s root test_questions.jsonl: ``(A) ...`` options inside ``text``, ``label`` the right letter."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / "test_questions.jsonl").open("w", encoding="utf-8") as f:
        for i, row in enumerate(rows):
            folder = root / row["category"]
            folder.mkdir(parents=True, exist_ok=True)
            scene(96, 64, seed=i).save(folder / f"sa_{i}.jpg")
            options = "\n".join(f"({chr(65 + k)}) {option}" for k, option in enumerate(row["options"]))
            text = f"{row['question']}\n{options}\nAnswer with the option's letter from the given choices directly."
            record = {"image": f"{row['category']}/sa_{i}.jpg", "text": text, "category": row["category"],
                      "question_id": i, "label": row["label"]}  # fmt: skip
            f.write(json.dumps(record) + "\n")
    return root / "test_questions.jsonl"


def write_refcoco_jsonl(root: Path, rows: list[dict]) -> Path:
    """RefCOCO as jsonl: image path relative to the file, COCO [x, y, w, h] bbox, referring expression."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    with (root / "refcoco_val.jsonl").open("w", encoding="utf-8") as f:
        for i, row in enumerate(rows):
            scene(*row["size"], seed=i).save(root / "images" / f"{i}.jpg")
            f.write(json.dumps({"image": f"images/{i}.jpg", "bbox": row["bbox"], "refexp": row["refexp"]}) + "\n")
    return root / "refcoco_val.jsonl"


def write_refcoco_sentences(path: Path, objects: list[dict]) -> Path:
    """The grounding scripts' per-sentence jsonl: one line per expression, ``bbox`` as corners, image size."""
    (path.parent / "images").mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for i, obj in enumerate(objects):
            width, height = obj["size"]
            scene(width, height, seed=i).save(path.parent / "images" / f"{i}.jpg")
            for sent in obj["sents"]:
                record = {"image": f"images/{i}.jpg", "sent": sent, "bbox": obj["bbox"], "width": width,
                          "height": height}  # fmt: skip
                f.write(json.dumps(record) + "\n")
    return path


def bomb_png() -> bytes:
    """A 48-byte-ish PNG whose header says 20000 x 20000 (PIL refuses it as a decompression bomb on open)."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    ihdr = struct.pack(">II", 20000, 20000) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)
