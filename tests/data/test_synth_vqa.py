"""``locus-data synth-vqa``: seeded high-resolution questions, and the information gap they are built to have.

The claim, measured here without a model (``locus_data/synth_vqa.py`` explains why it holds): re-render a question
with each of the four possible answers in place of the asked-about glyph, everything else equal, and store each
render as the command does (JPEG).

* Original: any two answers differ by at least 80 (of 255) in at least 20% of the glyph's pixels, and a
  three-line pixel classifier reads the answer from any crop that holds the glyph -- as cut, and as resized for the
  model at 16,384 crop tokens.
* View at 1,024 visual tokens (the processor's bicubic resize to at most 1024 * 28 * 28 pixels, Qwen2.5-VL, or
  1024 * 32 * 32, Qwen3-VL): the four renders give views that differ by at most 6 (of 255) in any pixel and channel,
  so no reader of the view can tell the answers apart -- while changing the glyph's ink colour instead changes its
  footprint in the same view by more than 40: the view shows where the glyph is and its colour, not its pattern.
"""

import io
import json
import math

import numpy as np
import pytest
from PIL import Image

from locus_data.cli import main
from locus_data.synth_vqa import FADE, GLYPH_SIDES, INKS, PATTERNS, VIEW_TOKENS, encode, item_id, plan_scene
from locus_data.synth_vqa import draw as draw_scene
from locus_data.vqa import MANIFEST_NAME, read_manifest
from locus_reward import frames
from locus_reward.options import PixelLimits
from tests.testing_utils import require_torch


SEED = 0
NUM_IMAGES = 5  # canvases 3840x2160, 4096x3072, 3000x2000, 3200x2400, 2160x3840 (CANVASES in order)
GAP_ITEMS = (0, 2, 4)  # landscape, the smallest canvas (least downscaled: the hardest case), portrait
CROP_TOKENS = 16384


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth_vqa") / "out"
    assert main(["synth-vqa", "--out", str(out), "--num-images", str(NUM_IMAGES), "--seed", str(SEED), "--quiet"]) == 0
    return out


def decode(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def render(scene) -> np.ndarray:
    """A scene as the command stores it (JPEG), decoded."""
    return np.asarray(decode(encode(draw_scene(scene))), dtype=np.int16)


def view(pixels: np.ndarray, coord_frame: str, resize: str = "pil") -> np.ndarray:
    """The full image as the model sees it at VIEW_TOKENS: smart_resize size, bicubic with antialiasing."""
    factor = frames.BACKBONES[coord_frame].factor
    limits = PixelLimits.processor_only(None, VIEW_TOKENS * factor * factor)
    width, height = frames.seen_size(pixels.shape[1], pixels.shape[0], coord_frame, **limits.pixel_kwargs)
    if resize == "pil":  # the slow image processor: PIL bicubic
        image = Image.fromarray(pixels.astype(np.uint8)).resize((width, height), Image.Resampling.BICUBIC)
        return np.asarray(image, dtype=np.int16)
    import torch  # heavy: the fast image processor's path (torchvision bicubic, antialias) only

    tensor = torch.from_numpy(pixels.astype(np.float32)).permute(2, 0, 1)[None]
    resized = torch.nn.functional.interpolate(tensor, (height, width), mode="bicubic", antialias=True)
    return resized.round().clamp(0, 255)[0].permute(1, 2, 0).numpy().astype(np.int16)


def read_pattern(pixels: np.ndarray) -> int | None:
    """A three-line classifier: which neighbours differ (rows, columns, diagonals) in the glyph's inner region."""
    luma = pixels.astype(float).mean(axis=2)
    dx, dy = np.abs(np.diff(luma, axis=1)).mean(), np.abs(np.diff(luma, axis=0)).mean()
    dd = np.abs(luma[1:, 1:] - luma[:-1, :-1]).mean()
    threshold = 20.0
    if dx < threshold and dy < threshold:
        return PATTERNS.index("solid (no pattern)")
    if dy >= threshold > dx:
        return PATTERNS.index("horizontal lines")
    if dx >= threshold > dy:
        return PATTERNS.index("vertical lines")
    return PATTERNS.index("checkerboard") if dd < min(dx, dy) / 2 else None


def inner(pixels: np.ndarray, box, scale_x: float = 1.0, scale_y: float = 1.0) -> np.ndarray:
    """The glyph's region inside its faded border, in an image scaled by (scale_x, scale_y)."""
    x1, y1, x2, y2 = box
    ix, iy = math.ceil((FADE + 1) * scale_x) + 1, math.ceil((FADE + 1) * scale_y) + 1
    return pixels[
        math.ceil(y1 * scale_y) + iy : int(y2 * scale_y) - iy, math.ceil(x1 * scale_x) + ix : int(x2 * scale_x) - ix
    ]


def test_writes_a_valid_manifest_of_high_resolution_questions(synth_dir):
    items = read_manifest(synth_dir)
    assert [item.id for item in items] == [item_id(i) for i in range(NUM_IMAGES)]
    assert main(["validate", str(synth_dir), "--quiet"]) == 0  # ids, images, letters, nested boxes inside the image
    for item in items:
        assert 3000 <= max(item.width, item.height) <= 4096 and item.width * item.height >= 6_000_000  # 3-4K
        glyph, card, region = item.boxes  # nested, smallest first (validate checked the nesting)
        assert glyph[2] - glyph[0] == glyph[3] - glyph[1] and GLYPH_SIDES[0] <= glyph[2] - glyph[0] <= GLYPH_SIDES[1]
        assert card[2] - card[0] > 3 * (glyph[2] - glyph[0]) and region[2] - region[0] > card[2] - card[0]
        assert (
            sorted(item.choices) == sorted(PATTERNS)
            and item.choices["ABCD".index(item.answer)] == item.extra["pattern"]
        )
        assert item.extra["card"] in item.question
        assert item.image.parent == synth_dir / "images" and item.image.suffix == ".jpg"
    assert len({item.answer for item in items}) > 1 and len({item.extra["pattern"] for item in items}) > 1
    with Image.open(synth_dir / "preview.png") as sheet:
        assert sheet.width > 800


def test_is_deterministic_per_seed_and_the_plan_describes_the_file(synth_dir, tmp_path):
    # same seed -> the same bytes; another seed -> other scenes; plan_scene(seed, i) re-renders image i exactly
    assert (
        main(["synth-vqa", "--out", str(tmp_path / "again"), "--num-images", "2", "--seed", str(SEED), "--quiet"]) == 0
    )
    assert main(["synth-vqa", "--out", str(tmp_path / "other"), "--num-images", "2", "--seed", "1", "--quiet"]) == 0
    name = f"images/{item_id(1)}.jpg"
    assert (tmp_path / "again" / name).read_bytes() == (synth_dir / name).read_bytes()
    assert (tmp_path / "other" / name).read_bytes() != (synth_dir / name).read_bytes()
    first_lines = (synth_dir / MANIFEST_NAME).read_text().splitlines()[:2]
    assert (tmp_path / "again" / MANIFEST_NAME).read_text().splitlines() == first_lines
    assert encode(draw_scene(plan_scene(SEED, 1))) == (synth_dir / name).read_bytes()


def test_refuses_a_non_empty_output_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["synth-vqa", "--out", str(out), "--num-images", "2", "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "not empty; pass --overwrite" in error and error.count("\n") == 1
    assert main(["synth-vqa", "--out", str(out), "--num-images", "2", "--quiet", "--overwrite"]) == 0
    # a smaller rerun leaves no stale images of the first run; files it did not write are kept
    assert main(["synth-vqa", "--out", str(out), "--num-images", "1", "--quiet", "--overwrite"]) == 0
    assert sorted(p.name for p in (out / "images").iterdir()) == [f"{item_id(0)}.jpg"]
    assert (out / "notes.txt").read_text() == "mine" and len(read_manifest(out)) == 1
    assert main(["synth-vqa", "--out", str(tmp_path / "x"), "--num-images", "0"]) == 2


@pytest.fixture(scope="module")
def counterfactuals(synth_dir):
    """Per GAP_ITEMS item: the scene, the four renders (one per answer) and one with another ink colour."""
    cases = []
    for index in GAP_ITEMS:
        scene = plan_scene(SEED, index)
        glyph = scene.cards[scene.target].glyph
        renders = [render(scene.with_target(pattern=k)) for k in range(len(PATTERNS))]
        # the render of the true answer is the written file
        written = np.asarray(Image.open(synth_dir / f"images/{item_id(index)}.jpg").convert("RGB"), dtype=np.int16)
        assert np.array_equal(renders[glyph.pattern], written)
        other_ink = render(scene.with_target(ink=next(ink for ink in INKS if ink != glyph.ink)))
        cases.append((scene, glyph, renders, other_ink))
    return cases


def test_the_answers_differ_plainly_in_the_original(counterfactuals):
    for _, glyph, renders, _ in counterfactuals:
        x1, y1, x2, y2 = glyph.box
        for a in range(len(PATTERNS)):
            for b in range(a + 1, len(PATTERNS)):
                diff = np.abs(renders[a][y1:y2, x1:x2] - renders[b][y1:y2, x1:x2]).max(axis=2)
                assert (diff >= 80).mean() >= 0.20, (PATTERNS[a], PATTERNS[b])


def test_a_crop_shows_the_answer_as_cut_and_as_resized_for_the_model(counterfactuals):
    rng = np.random.default_rng(0)
    for _, glyph, renders, _ in counterfactuals:
        x1, y1, x2, y2 = glyph.box
        for answer, pixels in enumerate(renders):
            for _ in range(4):  # crops of random size and place that hold the glyph with some margin
                left, top = x1 - int(rng.integers(8, 400)), y1 - int(rng.integers(8, 400))
                right, bottom = x2 + int(rng.integers(8, 400)), y2 + int(rng.integers(8, 400))
                left, top = max(0, left), max(0, top)
                crop = pixels[top:bottom, left:right]
                box = (x1 - left, y1 - top, x2 - left, y2 - top)
                assert read_pattern(inner(crop, box)) == answer
                # what the model gets: smart_resize to multiples of 28 within the crop-token budget (bicubic)
                h, w = frames.smart_resize(crop.shape[0], crop.shape[1], 28, 3136, CROP_TOKENS * 28 * 28)
                resized = np.asarray(
                    Image.fromarray(crop.astype(np.uint8)).resize((w, h), Image.Resampling.BICUBIC), dtype=np.int16
                )
                sx, sy = w / crop.shape[1], h / crop.shape[0]
                assert read_pattern(inner(resized, box, sx, sy)) == answer, (PATTERNS[answer], crop.shape, (h, w))


@pytest.mark.parametrize("coord_frame", ["qwen2_5_vl", "qwen3_vl"])
def test_the_view_at_1024_tokens_shows_where_the_glyph_is_but_not_the_answer(counterfactuals, coord_frame):
    for scene, glyph, renders, other_ink in counterfactuals:
        views = [view(pixels, coord_frame) for pixels in renders]
        assert max(np.abs(v - views[0]).max() for v in views[1:]) <= 6  # every pixel, every channel
        scale_x, scale_y = views[0].shape[1] / scene.width, views[0].shape[0] / scene.height
        assert scale_x < 1 / 2.3  # the view is the original shrunk more than 2.3x
        x1, y1, x2, y2 = glyph.box
        footprint = (
            slice(int(y1 * scale_y), math.ceil(y2 * scale_y)),
            slice(int(x1 * scale_x), math.ceil(x2 * scale_x)),
        )
        truth = views[glyph.pattern]
        assert np.abs(view(other_ink, coord_frame) - truth)[footprint].max() > 40  # the ink colour does show


@require_torch
def test_the_fast_processors_resize_removes_the_answer_too(counterfactuals):
    # transformers' fast image processors resize with torch (bicubic, antialias) instead of PIL
    for _, _, renders, _ in counterfactuals[:1]:
        views = [view(pixels, "qwen2_5_vl", resize="torch") for pixels in renders]
        assert max(np.abs(v - views[0]).max() for v in views[1:]) <= 6


def test_manifest_lines_name_the_answer_pattern(synth_dir):
    # the pattern and card colour are kept as extra fields (what a person checks a preview against)
    row = json.loads((synth_dir / MANIFEST_NAME).read_text().splitlines()[0])
    assert row["pattern"] == row["choices"]["ABCD".index(row["answer"])] and row["card"] in row["question"]
