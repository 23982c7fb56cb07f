"""Cost of one crop-tool call on an 8K image, against decoding that image once (which happens once per question).

Run: ``python benchmarks/bench_crop_tool.py`` (about two minutes). Pinned to one core; medians of repeats
(``time.perf_counter``).
The image is a 7680x4320 JPEG (quality 90) of a synthetic scene with photo-like texture, seen at 1,024 visual tokens
(Qwen2.5-VL). A call is what the tool does between two generations: map the view-frame box to original pixels, cut
the crop from the decoded original, and resize it for the model at the 16,384-token crop budget
(:class:`locus_agent.crop_tool.CropTool`). Printed beside it, not part of the call: what the next turn's input costs
to encode -- the Qwen-VL image processor's patches (HF backend), or a PNG data URL (OpenAI-compatible backend).
Target: a call under 5% of one decode.
"""

import base64
import io
import os
import statistics
import time

import numpy as np
from PIL import Image

from locus_agent.crop_tool import CropTool
from locus_agent.view import View
from locus_reward import frames
from locus_reward.tool_calls import ToolCall


REPEATS = 7
SIDE_REPEATS = 3
"""repeats of the two encode columns (seconds each for the largest crops)"""
WIDTH, HEIGHT = 7680, 4320
# regions in original pixels, as a model might ask for them: a sign, a storefront, a quarter, the whole image
REGIONS = {
    "small 240x135": (3000, 2000, 3240, 2135),
    "medium 960x540": (2000, 1500, 2960, 2040),
    "large 1920x1080": (1000, 1000, 2920, 2080),
    "quarter 3840x2160": (0, 0, 3840, 2160),
    "whole 7680x4320": (0, 0, WIDTH, HEIGHT),
}


def scene_jpeg() -> bytes:
    """A 7680x4320 JPEG with gradients, blocks and fine noise (so it compresses like a photo, not a flat test card)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    pixels = np.stack([x / WIDTH * 255, y / HEIGHT * 255, (x + y) % 256], -1)
    for _ in range(400):
        x0, y0 = int(rng.integers(0, WIDTH - 200)), int(rng.integers(0, HEIGHT - 200))
        pixels[y0 : y0 + int(rng.integers(20, 200)), x0 : x0 + int(rng.integers(20, 200))] = rng.integers(0, 255, 3)
    pixels += rng.normal(0, 12, pixels.shape).astype(np.float32)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def median_ms(fn, repeats: int = REPEATS) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    from transformers import Qwen2VLImageProcessor  # the real processor's patch encoding, for the encode column

    data = scene_jpeg()
    megabytes = len(data) / 1e6
    print(f"8K JPEG: {WIDTH}x{HEIGHT}, {megabytes:.1f} MB; one core, medians of {REPEATS} ({SIDE_REPEATS} encode)")

    def decode():
        with Image.open(io.BytesIO(data)) as image:
            return image.convert("RGB")

    decode_ms = median_ms(decode)
    original = decode()
    view = View.at_budget(original, "qwen2_5_vl", 1024)
    tool = CropTool(original, view)
    processor = Qwen2VLImageProcessor(
        min_pixels=frames.BACKBONES["qwen2_5_vl"].processor_min_pixels,
        max_pixels=frames.budget_pixels(16384, "qwen2_5_vl"),
    )
    print(f"decode once: {decode_ms:.1f} ms (view {view.seen_size[0]}x{view.seen_size[1]}, {view.tokens} tokens)")
    print(f"{'region':<20} {'crop -> model':>16} {'tokens':>7} {'call ms':>8} {'% decode':>9} {'patches ms':>11} "
          f"{'PNG URL ms':>11}")  # fmt: skip
    for name, box in REGIONS.items():
        call = ToolCall(frames.rescale_box(box, WIDTH, HEIGHT, *view.extent), "region", None)
        result = tool(call)
        call_ms = median_ms(lambda call=call: tool(call))
        patches_ms = median_ms(lambda image=result.image: processor(images=[image], return_tensors="np"), SIDE_REPEATS)

        def png_url(image=result.image) -> str:
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            return base64.b64encode(buffer.getvalue()).decode("ascii")

        url_ms = median_ms(png_url, SIDE_REPEATS)
        size = f"{result.crop_size[0]}x{result.crop_size[1]}->{result.image.width}x{result.image.height}"
        print(f"{name:<20} {size:>16} {result.visual_tokens:>7} {call_ms:>8.2f} {100 * call_ms / decode_ms:>8.2f}% "
              f"{patches_ms:>11.1f} {url_ms:>11.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
