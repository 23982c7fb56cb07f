"""LFPC rows as ``locus-data export-lfpc`` writes them, for the tests: small originals whose pixels name their
coordinates, half-size views, MCQ ground truth with nested boxes.

Row format (locus_train.easyr1.rollout's contract): ``problem`` = ``<image>`` + the question, ``images`` = ONE
``{"bytes": <view PNG>, "path": <absolute path of the original>}`` struct, ``answer`` = the LFPC ground-truth JSON,
``id`` = the question id.
"""

import io
from pathlib import Path

from locus_reward.lfpc_ground_truth import dumps
from tests.agent.conftest import coordinate_image


QUESTION = "Which colour is the mark near object {i}?\nA. red\nB. blue\nAnswer with the option's letter."
# nested boxes in original pixels, smallest first (the mark, its patch)
BOXES = [[200.0, 150.0, 240.0, 190.0], [160.0, 110.0, 320.0, 250.0]]


def png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def lfpc_rows(
    folder: Path,
    count: int = 4,
    size: tuple[int, int] = (640, 480),
    view_size: tuple[int, int] = (320, 240),
    boxes: bool = True,
) -> list[dict]:
    """``count`` rows; originals written to ``folder`` (each shifted, so no two prompts are alike)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        original = coordinate_image(size[0] + 8 * i, size[1])
        path = (folder / f"original_{i}.png").resolve()
        original.save(path)
        view = original.resize(view_size)
        answer = dumps(
            "A",
            original.width,
            original.height,
            view_width=view.width,
            view_height=view.height,
            choices=["red", "blue"],
            boxes=BOXES if boxes else [],
        )
        rows.append(
            {
                "problem": "<image>" + QUESTION.format(i=i),
                "images": [{"bytes": png(view), "path": str(path)}],
                "answer": answer,
                "id": f"q{i}",
            }
        )
    return rows


def write_lfpc_data(out: Path, **kwargs) -> Path:
    """OUT/train.parquet and OUT/val.parquet (the same rows), originals in OUT/originals."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = lfpc_rows(out / "originals", **kwargs)
    table = pa.Table.from_pylist(rows)
    for split in ("train", "val"):
        pq.write_table(table, out / f"{split}.parquet")
    return out
