"""What the teacher is shown, and which of its answers are kept."""

import base64

import pytest

from locus_baselines.teacher import TeacherError
from locus_baselines.teacher_tasks import clean_rationale, clean_refexp, load_task
from locus_data.errors import UserError
from locus_data.rows import iter_rows


def first_rows(dataset):
    rows = list(iter_rows("train", dataset / "train.parquet"))
    return rows[0], rows[1]  # a 640x480 and a 500x375 full image


def image_urls(content: list[dict]) -> list[str]:
    return [p["image_url"]["url"] for p in content if p["type"] == "image_url"]


def test_rationale_request_sends_full_image_then_cue_and_the_box(dataset):
    row, _ = first_rows(dataset)
    content = load_task("rationale").content(row)
    full, cue = (base64.b64encode(row.image_bytes(i)).decode() for i in (0, 1))
    assert image_urls(content) == [f"data:image/jpeg;base64,{full}", f"data:image/png;base64,{cue}"]
    assert content[0]["type"] == "image_url"  # the prompt opens with the full image
    text = " ".join(p["text"] for p in content if p["type"] == "text")
    # stored box [10, 20, 60, 90] of 640x480, in Qwen2.5-VL's frame for an unresized 640x480 image (644x476)
    assert "[10, 20, 60, 89]" in text
    assert "{{" not in text and "{#" not in text  # template fully rendered, header comment dropped


@pytest.mark.parametrize(
    "frame, box",
    [
        ("qwen2_5_vl", [11, 19, 61, 87]),  # 500x375 seen as 504x364 by the teacher's own processor (no EasyR1)
        ("qwen3_vl", [22, 53, 122, 240]),  # relative 0-1000
        ("original", [11, 20, 61, 90]),  # stored pixels
    ],
)
def test_teacher_box_is_in_the_teachers_frame(dataset, frame, box):
    _, row = first_rows(dataset)
    assert load_task("rationale", teacher_coord_frame=frame).teacher_box(row.answer) == box


def test_refexp_can_leave_out_the_cue(dataset):
    row, _ = first_rows(dataset)
    assert len(image_urls(load_task("refexp").content(row))) == 2  # default: full image and cue
    assert len(image_urls(load_task("refexp", show_cue=False).content(row))) == 1  # full image only


def test_prompt_with_wrong_marker_count_is_refused(dataset, tmp_path):
    # a hand-edited prompt that forgot the cue marker would silently send the cue nowhere
    prompt = tmp_path / "p.txt"
    prompt.write_text("<image>\nDescribe how to find the cue at {{ box }}.")
    row, _ = first_rows(dataset)
    with pytest.raises(UserError, match="1 <image> marker"):
        load_task("rationale", prompt).content(row)


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("  The cue is the red sign above the door.  ", "The cue is the red sign above the door."),  # trimmed
        ("<think>The red sign, top left.</think>", "The red sign, top left."),  # teacher imitated the format
        ("It shows 3 people near the left edge.", "It shows 3 people near the left edge."),  # counts are not boxes
    ],
)
def test_rationale_kept(answer, expected):
    assert clean_rationale(answer) == expected


@pytest.mark.parametrize(
    "answer",
    [
        "   ",  # empty
        "The cue is at [12, 40, 88, 97].",  # box list: would leak into the student's think text
        "Its corner (120, 45) is near the sign.",  # a point is a coordinate too
        "Look at x1=120 on the left.",  # coordinate assignment
        "Inside the given bounding box there is a dog.",  # the student never gets a box to refer to
        "A dog.</think><answer>[1, 2, 3, 4]</answer>",  # would break the target's tag structure
        "See <image> for the dog.",  # an extra image marker breaks LLaMA-Factory's image count
    ],
)
def test_rationale_rejected(answer):
    with pytest.raises(TeacherError) as info:
        clean_rationale(answer)
    assert info.value.kind == "invalid answer" and info.value.retryable


@pytest.mark.parametrize(
    "answer, expected",
    [
        ('"the red umbrella"', "the red umbrella"),  # straight quotes
        ("\u201cthe red umbrella\u201d", "the red umbrella"),  # typographic quotes
        ("Expression: the red umbrella", "the red umbrella"),  # a label before the answer
        (" ".join(["w"] * 25), " ".join(["w"] * 25)),  # exactly 25 words: the limit is inclusive
    ],
)
def test_refexp_kept(answer, expected):
    assert clean_refexp(answer, max_words=25) == expected


@pytest.mark.parametrize(
    "answer",
    [
        '""',  # only quotes
        " ".join(["w"] * 26),  # over the limit
        "the red umbrella\nthe blue car",  # two expressions
        "the umbrella at [10, 20, 30, 40]",  # coordinates would hand the student the answer
    ],
)
def test_refexp_rejected(answer):
    with pytest.raises(TeacherError):
        clean_refexp(answer, max_words=25)
