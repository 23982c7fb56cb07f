"""A box written in the model's view frame cuts exactly that region of the ORIGINAL image, at both budgets."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from locus_agent.crop_tool import CropTool, grow_to_min_side
from locus_agent.processor import load_processor, pixel_limits, set_pixel_limits
from locus_agent.view import AGENT_FRAMES, View
from locus_reward import frames
from locus_reward.tool_calls import ToolCall

from .conftest import coordinate_image, pixel_position


transformers = pytest.importorskip("transformers")
from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize as hf_smart_resize  # noqa: E402


BUDGETS = (1024, 16384)


def exact_region(box_view, view: View) -> tuple[int, int, int, int]:
    """The region a view-frame box names in original pixels, computed exactly (rationals), rounded outwards."""
    (ext_w, ext_h), (width, height) = view.extent, view.original_size
    x1, y1, x2, y2 = (Fraction(v) for v in box_view)
    scale_x, scale_y = Fraction(width) / Fraction(ext_w), Fraction(height) / Fraction(ext_h)
    left, top = max(0, math.floor(x1 * scale_x)), max(0, math.floor(y1 * scale_y))
    right, bottom = min(width, math.ceil(x2 * scale_x)), min(height, math.ceil(y2 * scale_y))
    return left, top, right, bottom


def valid(box) -> ToolCall:
    return ToolCall(tuple(float(v) for v in box), "x", None)


def in_view(box, view: View):
    """The view-frame box that names ``box`` (original pixels): what a model would write for that region."""
    return frames.rescale_box(box, *view.original_size, *view.extent)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    coord_frame=st.sampled_from(AGENT_FRAMES),
    budget=st.sampled_from(BUDGETS),
    width=st.integers(64, 4000),
    height=st.integers(64, 4000),
)
def test_a_view_box_cuts_that_region_of_the_original(data, coord_frame, budget, width, height):
    original = coordinate_image(width, height)
    view = View.at_budget(original, coord_frame, budget)
    backbone = frames.BACKBONES[coord_frame]
    # the view is the real processor's smart_resize at N * factor^2 pixels and the checkpoint's min_pixels
    seen_h, seen_w = hf_smart_resize(
        height, width, backbone.factor, backbone.processor_min_pixels, budget * backbone.factor**2
    )
    assert view.seen_size == view.image.size == (seen_w, seen_h)
    assert view.tokens <= budget
    ext_w, ext_h = (int(v) for v in view.extent)
    x1 = data.draw(st.integers(0, ext_w - 1), "x1")
    x2 = data.draw(st.integers(x1 + 1, ext_w), "x2")
    y1 = data.draw(st.integers(0, ext_h - 1), "y1")
    y2 = data.draw(st.integers(y1 + 1, ext_h), "y2")
    expected = exact_region((x1, y1, x2, y2), view)
    crop_w, crop_h = expected[2] - expected[0], expected[3] - expected[1]
    # growth and the aspect limit have their own tests: here the region is taken as it is
    assume(min(crop_w, crop_h) >= backbone.factor and max(crop_w, crop_h) / min(crop_w, crop_h) <= 100)
    result = CropTool(original, view)(valid((x1, y1, x2, y2)))
    assert result.ok and result.box_orig == expected
    # the region cut holds the asked one, grown by less than one token a side to whole tokens when it fits
    cx1, cy1, cx2, cy2 = result.crop_box
    assert cx1 <= expected[0] and cy1 <= expected[1] and cx2 >= expected[2] and cy2 >= expected[3]
    assert cx2 - cx1 - crop_w < backbone.factor and cy2 - cy1 - crop_h < backbone.factor
    cut = np.asarray(result.crop)
    # the crop's pixels are the original's region, at original resolution, cut where the box says
    assert np.array_equal(cut, np.asarray(original.crop(result.crop_box)))
    assert pixel_position(cut[0, 0]) == (cx1, cy1)
    assert pixel_position(cut[-1, -1]) == (cx2 - 1, cy2 - 1)
    # handed to the model as the real processor would resize it at the crop budget (16,384 tokens)
    model_h, model_w = hf_smart_resize(
        cy2 - cy1, cx2 - cx1, backbone.factor, backbone.processor_min_pixels, 16384 * backbone.factor**2
    )
    assert result.image.size == (model_w, model_h)
    assert result.visual_tokens == (model_w // backbone.factor) * (model_h // backbone.factor) <= 16384
    # a crop within the budget that the image can widen to whole tokens is not resampled at all
    fits = backbone.processor_min_pixels <= (cx2 - cx1) * (cy2 - cy1) <= 16384 * backbone.factor**2
    if fits and (cx2 - cx1) % backbone.factor == 0 and (cy2 - cy1) % backbone.factor == 0:
        assert np.array_equal(np.asarray(result.image), cut)


@pytest.mark.parametrize(
    "coord_frame, budget, seen",
    [
        ("qwen2_5_vl", 1024, (1092, 728)),  # the example at the low budget
        ("qwen2_5_vl", 16384, (2996, 1988)),  # and at the high one
        ("qwen3_vl", 1024, (1248, 832)),  # 32 px per token
        ("qwen3_vl", 16384, (3008, 1984)),
    ],
)
def test_the_3000x2000_example(coord_frame, budget, seen):
    original = coordinate_image(3000, 2000)
    view = View.at_budget(original, coord_frame, budget)
    assert view.seen_size == seen and view.image.size == seen
    # the whole view frame is the whole original
    whole = CropTool(original, view)(valid((0, 0, *view.extent)))
    assert whole.box_orig == (0, 0, 3000, 2000)
    # a Qwen2.5-VL box is in seen pixels, a Qwen3-VL box in thousandths: both name the same original region
    quarter = (view.extent[0] / 4, view.extent[1] / 4, view.extent[0] / 2, view.extent[1] / 2)
    result = CropTool(original, view)(valid(quarter))
    assert result.box_orig == (750, 500, 1500, 1000)
    # cut at whole tokens about the same centre (750 x 500 px -> 27 x 18 tokens of 28 px, 32 px for Qwen3-VL)
    factor = view.factor
    width, height = -(-750 // factor) * factor, -(-500 // factor) * factor
    left, top = (750 + 1500) // 2 - width // 2, (500 + 1000) // 2 - height // 2
    assert result.crop_box == (left, top, left + width, top + height)
    assert np.array_equal(np.asarray(result.crop), np.asarray(original)[top : top + height, left : left + width])
    assert result.image is result.crop  # handed over as cut: no resampling


def test_view_and_crop_sizes_are_what_the_real_processor_makes(tiny_checkpoint):
    kind, path = tiny_checkpoint
    processor = load_processor(path)
    low, _ = pixel_limits(processor)
    set_pixel_limits(processor, None, frames.budget_pixels(1024, kind))  # an agent's processor takes both budgets
    original = coordinate_image(1500, 1000)
    view = View.at_budget(original, kind, 1024, min_pixels=low)
    tool = CropTool(original, view, max_crop_tokens=1024, min_pixels=low)
    crop = tool(valid((0, 0, view.extent[0] / 3, view.extent[1] / 5)))
    ours = processor.image_processor(images=[view.image, crop.image], return_tensors="np")
    patch = processor.image_processor.patch_size
    grids = ours["image_grid_thw"].tolist()
    # the processor leaves our pre-sized images alone: its grid is our size, its token count ours
    assert [(w * patch, h * patch) for _, h, w in grids] == [view.image.size, crop.image.size]
    assert [h * w // 4 for _, h, w in grids] == [view.tokens, crop.visual_tokens]
    # and the pixels equal what it makes of the original / the crop as cut (its own resize, same result)
    theirs = processor.image_processor(images=[original, crop.crop], return_tensors="np")
    assert theirs["image_grid_thw"].tolist() == grids
    assert np.allclose(theirs["pixel_values"], ours["pixel_values"])


@pytest.mark.parametrize("coord_frame", AGENT_FRAMES)
def test_small_boxes_grow_about_their_centre_to_one_token(coord_frame):
    original = coordinate_image(2000, 1500)
    view = View.at_budget(original, coord_frame, 1024)
    factor = view.factor
    tool = CropTool(original, view)
    # a one-unit box in the middle of the view: grown to factor x factor original pixels around its centre
    cx, cy = view.extent[0] / 2, view.extent[1] / 2
    result = tool(valid((cx, cy, cx + 1, cy + 1)))
    x1, y1, x2, y2 = result.box_orig
    assert (x2 - x1, y2 - y1) == (factor, factor)
    mapped = view.to_original((cx, cy, cx + 1, cy + 1))
    assert (
        abs((x1 + x2) / 2 - (mapped[0] + mapped[2]) / 2) <= 1 and abs((y1 + y2) / 2 - (mapped[1] + mapped[3]) / 2) <= 1
    )
    # in a corner the grown box is shifted inside the image, not cut by its edge
    corner = tool(valid((0, 0, 1, 1)))
    assert corner.box_orig == (0, 0, factor, factor)
    far = tool(valid((view.extent[0] - 1, view.extent[1] - 1, *view.extent)))
    assert far.box_orig == (2000 - factor, 1500 - factor, 2000, 1500)
    assert np.array_equal(np.asarray(far.crop), np.asarray(original)[1500 - factor :, 2000 - factor :])


def test_growth_on_an_image_narrower_than_one_token():
    # an image thinner than the factor: the box takes the whole width, never more
    assert grow_to_min_side((3, 10, 5, 60), 28, 20, 100) == (0, 10, 20, 60)


def test_aspect_ratio_limit_is_100_after_growing():
    original = coordinate_image(4000, 200)
    view = View.at_budget(original, "qwen2_5_vl", 16384)
    tool = CropTool(original, view)
    # 2800 x 28 px is exactly 100:1 (accepted); 2828 x 28 is above (rejected with a text turn)
    ok = tool(valid(in_view((0, 10, 2800, 38), view)))
    assert ok.ok and ok.box_orig == (0, 10, 2800, 38)
    thin = tool(valid(in_view((0, 10, 2828, 38), view)))
    assert thin.error == "too_thin" and thin.image is None and thin.message.startswith("Error: the region is too thin")
    # a 1-px-high line grows to 28 px first, so a 1000-px-wide line is a 1000 x 28 region (accepted)
    line = tool(valid(in_view((0, 100, 1000, 101), view)))
    assert line.ok and line.box_orig[3] - line.box_orig[1] == 28 and line.box_orig[2] == 1000
    # after growing, 3000 x 28 is 107:1 (rejected)
    assert tool(valid(in_view((0, 100, 3000, 101), view))).error == "too_thin"


def test_boxes_outside_the_view_are_clamped_or_rejected():
    original = coordinate_image(800, 600)
    view = View.at_budget(original, "qwen3_vl", 1024)
    tool = CropTool(original, view)
    # partly outside: clamped to the image
    assert tool(valid((500, 500, 1500, 1400))).box_orig == (400, 300, 800, 600)
    # wholly outside: nothing to cut
    outside = tool(valid((1100, 0, 1200, 100)))
    assert outside.error == "outside_image" and outside.crop is None
    assert outside.message == "Error: the box lies outside the image."


def test_parser_rejections_pass_through_as_text():
    # a call the parser rejected reaches the model as its reason, never as a crash
    original = coordinate_image(300, 200)
    tool = CropTool(original, View.at_budget(original, "qwen2_5_vl", 1024))
    result = tool(ToolCall(None, None, "bad_json"))
    assert not result.ok and result.message == "Error: the tool call is not valid JSON."


def test_max_crops_caps_the_crops_handed_out():
    # an engine takes a fixed number of images per prompt: after max_crops crops, calls get an error text instead;
    # rejected calls do not count, and the message tells the model to answer
    original = coordinate_image(600, 400)
    tool = CropTool(original, View.at_budget(original, "qwen2_5_vl", 1024), max_crops=1)
    assert tool(valid((900, 0, 1000, 100))).error == "outside_image"
    assert tool(valid((0, 0, 100, 100))).ok and tool.crops == 1
    limited = tool(valid((100, 100, 200, 200)))
    assert limited.error == "crop_limit" and limited.image is None and "answer now" in limited.message
    with pytest.raises(ValueError, match="max_crops"):
        CropTool(original, View.at_budget(original, "qwen2_5_vl", 1024), max_crops=-1)


def test_gt_mode_hands_the_best_matching_ground_truth_region():
    original = coordinate_image(1000, 800)
    view = View.at_budget(original, "qwen2_5_vl", 1024)
    # nested boxes whose sides are whole tokens (28 px), so the regions cut are exactly the boxes
    nested = [(406.0, 308.0, 434.0, 336.0), (378.0, 280.0, 518.0, 392.0), (196.0, 112.0, 812.0, 700.0)]
    tool = CropTool(original, view, mode="gt", gt_boxes=nested)
    box = in_view((370, 270, 510, 410), view)
    model = CropTool(original, view)(valid(box))
    result = tool(valid(box))
    # the model's box and its mapping are unchanged; the image is the GT box it overlaps most (the middle one)
    assert result.box_view == model.box_view and result.box_orig == model.box_orig == (370, 270, 510, 410)
    assert result.crop_box == (378, 280, 518, 392)
    assert np.array_equal(np.asarray(result.crop), np.asarray(original)[280:392, 378:518])
    assert result.message == model.message
    # a box touching no GT box takes the first (smallest) one: 28 x 28 px, below min_pixels, so it is upscaled
    far = tool(valid(in_view((900, 10, 990, 90), view)))
    assert far.crop_box == (406, 308, 434, 336) and far.image.size == (56, 56)


def test_gt_mode_needs_boxes():
    # the GT diagnostic on data without boxes would silently hand the model's own crop
    original = coordinate_image(300, 200)
    with pytest.raises(ValueError, match="ground-truth boxes"):
        CropTool(original, View.at_budget(original, "qwen2_5_vl", 1024), mode="gt")


def test_noise_mode_is_same_size_uniform_noise_seeded():
    original = coordinate_image(1200, 900)
    view = View.at_budget(original, "qwen3_vl", 1024)
    box = valid((100, 100, 400, 300))
    model = CropTool(original, view)(box)
    first = CropTool(original, view, mode="noise", seed=7)(box)
    again = CropTool(original, view, mode="noise", seed=7)(box)
    other = CropTool(original, view, mode="noise", seed=8)(box)
    # same size and same mapping as the model's crop, but none of the image's pixels
    assert first.crop_size == model.crop_size and first.box_orig == model.box_orig and first.crop_box is None
    assert first.visual_tokens == model.visual_tokens
    pixels = np.asarray(first.crop)
    assert not np.array_equal(pixels, np.asarray(model.crop))
    assert 100 < pixels.mean() < 155 and pixels.min() == 0 and pixels.max() == 255  # uniform over 0..255
    # seeded: the same seed gives the same noise, another seed other noise
    assert np.array_equal(pixels, np.asarray(again.crop)) and not np.array_equal(pixels, np.asarray(other.crop))


def test_the_original_is_decoded_once(tmp_path):
    path = tmp_path / "big.png"
    coordinate_image(900, 700).save(path)
    with Image.open(path) as opened:
        view = View.at_budget(opened, "qwen2_5_vl", 1024)
        tool = CropTool(opened, view)
    # the file is closed: every call cuts from the copy the tool decoded
    first = tool(valid((0, 0, 100, 100)))
    second = tool(valid((100, 100, 300, 250)))
    assert first.ok and second.ok
    assert np.array_equal(np.asarray(second.crop), np.asarray(coordinate_image(900, 700).crop(second.crop_box)))


@pytest.mark.parametrize("coord_frame", AGENT_FRAMES)
def test_a_stored_view_maps_to_the_original_it_was_downsampled_from(coord_frame):
    from locus_reward.options import PixelLimits

    # under EasyR1 the model sees a stored, downsampled copy after EasyR1's resize and the processor's
    original = coordinate_image(3000, 2000)
    stored = original.resize((1500, 1000))
    view = View.from_stored(stored, original.size, coord_frame, PixelLimits())
    assert view.image is stored  # handed to the engine as stored: it resizes the image itself
    assert view.seen_size == frames.seen_size(1500, 1000, coord_frame)
    # the whole frame is the whole original, and a quarter of it the matching quarter of the original
    tool = CropTool(original, view)
    assert tool(valid((0, 0, *view.extent))).box_orig == (0, 0, 3000, 2000)
    quarter = (view.extent[0] / 2, view.extent[1] / 2, *view.extent)
    assert tool(valid(quarter)).box_orig == (1500, 1000, 3000, 2000)
