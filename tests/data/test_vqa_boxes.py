"""The Stage II boxes path: `locus-data add-boxes` from an annotation file, `preview` drawing them, `export-lfpc
--require-boxes`, and the exported ground truth scoring a crop the way the LFPC Stage II reward reads it."""

import json

import numpy as np
import pytest
from PIL import Image

from locus_data import lfpc_schema as ls
from locus_data.cli import main
from locus_data.config import SPLITS
from locus_data.errors import UserError
from locus_data.lfpc_export import export_lfpc
from locus_data.vqa import MANIFEST_NAME, read_manifest
from locus_data.vqa_boxes import add_boxes
from locus_reward import frames
from locus_reward.lfpc import compute_score_stage2
from locus_reward.tool_calls import TOOL_NAME

from .conftest import rows


W, H = 900, 600
SIGN = [[400, 300, 440, 320], [380, 280, 500, 360], [300, 200, 700, 500]]  # text, sign, storefront


@pytest.fixture()
def folder(tmp_path):
    """Four unboxed questions on 900x600 images (q0 with a 300x200 selected view) and an annotation file."""
    (tmp_path / "images").mkdir()
    lines = []
    for k in range(4):
        image = Image.new("RGB", (W, H), (50 * k, 80, 120))
        image.save(tmp_path / "images" / f"i{k}.png")
        line = {"id": f"q{k}", "image": f"images/i{k}.png", "question": "What does the sign say?", "answer": "open"}
        if k == 0:
            image.resize((300, 200)).save(tmp_path / "images" / "v0.png")
            line["view_image"] = "images/v0.png"
        lines.append(line)
    (tmp_path / MANIFEST_NAME).write_text("".join(json.dumps(line) + "\n" for line in lines))
    annotations = [{"id": "q0", "boxes": [SIGN[2], SIGN[0], SIGN[1]]}, {"id": "q2", "boxes": SIGN[1:]}]
    (tmp_path / "boxes.jsonl").write_text("".join(json.dumps(a) + "\n" for a in annotations))
    return tmp_path


def test_boxes_in_any_order_are_sorted_checked_and_written(folder):
    # an annotator draws outermost first; the manifest stores smallest first, nested, in original pixels
    path, annotated, written = add_boxes(folder, folder / "boxes.jsonl", folder / "boxed.jsonl")
    assert (annotated, written) == (2, 2)
    q0, q2 = read_manifest(path)
    assert (q0.id, q2.id) == ("q0", "q2")
    assert [list(box) for box in q0.boxes] == SIGN and [list(box) for box in q2.boxes] == SIGN[1:]
    assert q0.view_image == folder / "images" / "v0.png"  # the rest of the row is kept
    _, _, kept = add_boxes(folder, folder / "boxes.jsonl", folder / "all.jsonl", keep_unboxed=True)
    assert kept == 4 and [len(it.boxes) for it in read_manifest(folder / "all.jsonl")] == [3, 0, 2, 0]


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        ({"id": "q1", "boxes": [[10, 10, 50, 50], [40, 40, 90, 90]]}, r"boxes.jsonl:1: boxes of 'q1' .*not nested"),
        (
            {"id": "q1", "boxes": [[800, 500, 950, 580]]},
            r"boxes.jsonl:1: boxes of 'q1' \(900x600\).*inside the 900x600",
        ),
        ({"id": "q9", "boxes": [[1, 1, 2, 2]]}, r"boxes.jsonl:1: id 'q9' is not in .*manifest.jsonl"),
        ({"id": "q1", "boxes": [[50, 50, 10, 10]]}, r"boxes.jsonl:1: box 0: expected \[x1, y1, x2, y2\]"),
        ({"id": "q1", "boxes": []}, r"boxes.jsonl:1: boxes: expected a non-empty list"),
        ({"boxes": [[1, 1, 2, 2]]}, r"boxes.jsonl:1: expected \{\"id\""),
    ],
)
def test_a_bad_annotation_is_one_line_naming_the_annotation_line(folder, annotation, message, capsys):
    # the annotator is told which line to fix, before anything is written
    (folder / "boxes.jsonl").write_text(json.dumps(annotation) + "\n")
    with pytest.raises(UserError, match=message):
        add_boxes(folder, folder / "boxes.jsonl", folder / "boxed.jsonl")
    assert not (folder / "boxed.jsonl").exists()
    assert (
        main(["add-boxes", str(folder), "--boxes", str(folder / "boxes.jsonl"), "--out", str(folder / "b.jsonl")]) == 2
    )
    assert capsys.readouterr().err.count("\n") == 1


def test_a_repeated_id_is_refused(folder):
    # two annotations of one question: which one is right is the annotator's call, not ours
    line = json.dumps({"id": "q1", "boxes": [[1, 1, 5, 5]]})
    (folder / "boxes.jsonl").write_text(f"{line}\n{line}\n")
    with pytest.raises(UserError, match="boxes.jsonl:2: id 'q1' repeats line 1"):
        add_boxes(folder, folder / "boxes.jsonl", folder / "boxed.jsonl")


def test_cli_add_boxes_then_preview_for_the_annotator(folder, capsys):
    # the annotator's loop: merge, then look at the boxes drawn on the images
    out = folder / "boxed.jsonl"
    assert main(["add-boxes", str(folder), "--boxes", str(folder / "boxes.jsonl"), "--out", str(out)]) == 0
    assert "wrote 2 questions" in capsys.readouterr().out
    assert main(["preview", str(out), "--n", "2"]) == 0
    sheet = np.asarray(Image.open(folder / "boxed.preview.png").convert("RGB"))
    assert (sheet == (230, 20, 20)).all(axis=-1).sum() > 0  # the smallest box's colour is drawn


def test_require_boxes_refuses_unboxed_questions_for_stage_two(folder, tmp_path):
    # a Stage II export without boxes would score every crop 0: refused before anything is written
    with pytest.raises(UserError, match="--require-boxes: 4 questions have no boxes, e.g. 'q0'.*add-boxes"):
        export_lfpc(folder, tmp_path / "stage2", require_boxes=True, progress=False)
    assert not (tmp_path / "stage2" / "train.parquet").exists()


@pytest.mark.parametrize("view", ["selected", "original"])
def test_exported_ground_truth_scores_a_crop_written_in_the_frame_the_model_sees(folder, tmp_path, view):
    # end to end: a box on the GT region, in the pixels of the image the model is shown, gets IoU 1 from the reward
    add_boxes(folder, folder / "boxes.jsonl", folder / "boxed.jsonl", keep_unboxed=False)
    out = tmp_path / "stage2"
    export_lfpc(folder / "boxed.jsonl", out, val=1, view=view, require_boxes=True, progress=False)
    row = next(r for split in SPLITS for r in rows(out / f"{split}.parquet") if r[ls.ID] == "q0")
    gt = json.loads(row[ls.ANSWER])
    assert (gt["view_width"], gt["view_height"]) == ((300, 200) if view == "selected" else (W, H))
    limits = {"min_pixels": 784, "max_pixels": 1_605_632}  # the LFPC recipes' EasyR1 data limits
    seen = frames.seen_size(gt["view_width"], gt["view_height"], "qwen2_5_vl", **limits)
    box = [round(v) for v in frames.rescale_box(SIGN[0], W, H, *seen)]
    call = json.dumps({"name": TOOL_NAME, "arguments": {"bbox_2d": box, "label": "sign text"}})
    response = (
        f"<think>Small.</think><tool_call>{call}</tool_call>\nuser\n<tool_response>\nZoomed in.\n</tool_response>\n"
        "assistant\n<think>It says open.</think><answer>open</answer>"
    )
    (score,) = compute_score_stage2([{"response": response, "response_length": 80, "ground_truth": row[ls.ANSWER]}],
                                    coord_frame="qwen2_5_vl", **limits)  # fmt: skip
    assert score["accuracy"] == 1.0 and score["gt_error"] == 0.0
    assert score["iou"] > 0.85 and score["overlap"] > 0.95  # exact up to rounding the box to whole seen pixels
