"""HR-Bench 4K/8K from its TSV (VLMEvalKit convention: an image cell may point at another row's image)."""

import base64
import csv
import sys
from pathlib import Path

from locus_data.errors import UserError
from locus_data.images import ImageTooLarge, open_image
from locus_eval.benchmarks.items import Item, Loaded
from locus_reward.answers import LETTERS


# VLMEvalKit stores each image once: a cell this short holds another row's index instead of base64 bytes
INDEX_REFERENCE_MAX_LEN = 64


def read_hrbench(tsv: str | Path) -> Loaded:
    """HR-Bench from its TSV, resolving index-referenced image cells (see the module docstring)."""
    tsv = Path(tsv)
    csv.field_size_limit(sys.maxsize)  # an 8K image in base64 is far above csv's 128 KiB default
    try:
        with tsv.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
    except UnicodeDecodeError:
        kind = "a Parquet file" if tsv.read_bytes()[:4] == b"PAR1" else "not UTF-8 text"
        raise UserError(
            f"{tsv} is {kind}, not an HR-Bench TSV; --data for hrbench is hr_bench_4k.tsv or hr_bench_8k.tsv"
        ) from None
    for column in ("index", "question", "answer", "image"):
        if rows and column not in rows[0]:
            raise UserError(
                f"{tsv}: no {column!r} column; is this an HR-Bench TSV (hr_bench_4k.tsv / hr_bench_8k.tsv)?"
            )
    cells = {row["index"]: row["image"] for row in rows}
    decoded: dict[str, bytes] = {}
    references = 0

    def decode(cell: str, row: dict[str, str]) -> bytes:
        try:
            data = base64.b64decode(cell, validate=True)
            open_image(data)  # header only: catches text that happens to be valid base64
        except ImageTooLarge as err:
            raise UserError(f"{tsv}: row index {row['index']}: {err}") from None
        except (ValueError, OSError) as err:
            raise UserError(
                f"{tsv}: row index {row['index']}: image cell is neither base64 image bytes nor a row index "
                f"({type(err).__name__}); re-export the TSV with its images"
            ) from err
        return data

    def image_of(row: dict[str, str]) -> bytes:
        nonlocal references
        cell = row["image"].strip()
        is_reference = len(cell) <= INDEX_REFERENCE_MAX_LEN
        if is_reference:
            if len(cells.get(cell, "").strip()) <= INDEX_REFERENCE_MAX_LEN:
                raise UserError(
                    f"{tsv}: row index {row['index']}: image cell {cell!r} is neither base64 image bytes nor the "
                    "index of a row holding an image; re-export the TSV with its images"
                )
            references += 1
        source = cell if is_reference else row["index"]
        if source not in decoded:  # decode each stored image once, however many rows point at it
            decoded[source] = decode(cells[source].strip() if is_reference else cell, row)
        return decoded[source]

    items = []
    for row in rows:
        options = [row[letter] for letter in LETTERS if row.get(letter) not in (None, "", "nan")]
        items.append(
            Item(
                index=len(items),
                image=image_of(row),
                question=row["question"],
                options=options,
                answer=row["answer"].strip().upper(),
                category=row.get("category", ""),
                cycle=row.get("cycle_category", ""),
                name=str(row.get("index", len(items))),
            )
        )
    protocol = {
        "layout": "HR-Bench TSV (VLMEvalKit convention)",
        "images": {"base64": len(items) - references, "index_reference": references},
        "option_order": "as in the TSV (the cycles rotate the options)",
        "scoring": "accuracy within each cycle_category, then averaged over cycles",
    }
    return Loaded(items, protocol)
