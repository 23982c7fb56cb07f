"""Helpers for the agent tests: images whose pixels name their own coordinates, tool calls, episodes."""

import json

import numpy as np
import pytest
from PIL import Image

from locus_agent.crop_tool import CropTool
from locus_agent.loop import Episode
from locus_agent.view import View
from locus_reward.tool_calls import TOOL_NAME


def coordinate_image(width: int, height: int) -> Image.Image:
    """Each pixel names its position: R = x mod 256, G = y mod 256, B = (x // 256) + 16 * (y // 256).

    Unique for images up to 4096 px a side, so a crop one pixel off anywhere differs from the expected region.
    """
    x = np.arange(width, dtype=np.int64)[None, :]
    y = np.arange(height, dtype=np.int64)[:, None]
    red = np.broadcast_to(x % 256, (height, width))
    green = np.broadcast_to(y % 256, (height, width))
    blue = (x // 256 + 16 * (y // 256)) % 256
    return Image.fromarray(np.stack([red, green, blue], -1).astype(np.uint8), "RGB")


def pixel_position(pixel) -> tuple[int, int]:
    """The (x, y) a :func:`coordinate_image` pixel names."""
    red, green, blue = (int(v) for v in pixel)
    return red + 256 * (blue % 16), green + 256 * (blue // 16)


def call(box, label: str | None = "thing", name: str = TOOL_NAME) -> str:
    arguments = {"bbox_2d": box} if label is None else {"bbox_2d": box, "label": label}
    return "<tool_call>" + json.dumps({"name": name, "arguments": arguments}) + "</tool_call>"


def think(text: str = "Look closer.") -> str:
    return f"<think>{text}</think>"


def write_replay(path, lines: list[dict]):
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def episode(
    key: str = "q1",
    size: tuple[int, int] = (600, 400),
    coord_frame: str = "qwen2_5_vl",
    budget: int = 1024,
    processor=None,
    crop_tokens: int = 16384,
    **tool_kwargs,
) -> Episode:
    """A fresh episode on a coordinate image (min pixels from ``processor`` when given)."""
    from locus_agent.processor import pixel_limits

    original = coordinate_image(*size)
    min_pixels = pixel_limits(processor)[0] if processor is not None else None
    view = View.at_budget(original, coord_frame, budget, min_pixels=min_pixels)
    tool = CropTool(original, view, max_crop_tokens=crop_tokens, min_pixels=min_pixels, **tool_kwargs)
    return Episode.start(key, "What colour is the sign?", view, tool, processor=processor)


@pytest.fixture
def replay_file(tmp_path):
    return lambda lines: write_replay(tmp_path / "replay.jsonl", lines)
