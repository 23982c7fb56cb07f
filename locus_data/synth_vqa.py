"""``locus-data synth-vqa``: high-resolution scenes whose answer is a detail a crop shows and a small view does not.

Each scene is a 3-4K canvas (6 to 12.6 megapixels) of blotchy texture and clutter (shapes of every size, loose
patterned tiles) with three to five white cards, each framed in its own colour and holding one small square glyph
(36-48 px). The question asks what fills the glyph on the card of one colour, with four choices::

    horizontal lines | vertical lines | checkerboard | solid (no pattern)

Why the detail survives a crop but not the view: the three patterns alternate ink and paper every other pixel (the
finest possible pattern, 0.5 cycles per pixel), and the solid glyph is their exact average colour. Each pattern
fades into that average colour over its outer 6 px (a raised-cosine window), so every glyph has the same mean colour
and the same outline, and the four differ *only* at frequencies near 0.5 cycles per pixel. At 1,024 visual tokens the
processor shrinks these canvases 2.7-4.1x (Qwen2.5-VL: at most 1024 * 28 * 28 pixels; Qwen3-VL, 1024 * 32 * 32:
2.4-3.6x), which puts that frequency far beyond what the smaller image can hold, and its bicubic (antialiasing)
resize removes it: the view shows *where* the glyph is and its colour, not its pattern. A crop is cut from the
original; the processor changes its sides by a few percent at most (to multiples of 28), which leaves moire bands but
the pattern plain. The data tests (``test_synth_vqa.py``) measure exactly this (see :data:`VIEW_TOKENS`).

Nested boxes, smallest first: the glyph, its card, and a region of one card-width around the card. Deterministic for
a seed (each image from ``numpy.random.default_rng([seed, index])``); images are JPEG at quality 95 without chroma
subsampling (1-px patterns survive it), written as ``OUT/images/<id>.jpg``, with ``OUT/manifest.jsonl`` (the VQA
manifest of :mod:`locus_data.vqa`) and ``OUT/preview.png``.
"""

import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from locus_data.errors import UserError
from locus_data.synth import CATEGORIES, draw_shape
from locus_data.vqa import MANIFEST_NAME, VqaItem, write_manifest
from locus_reward.answers import LETTERS


CANVASES = [(3840, 2160), (4096, 3072), (3000, 2000), (3200, 2400), (2160, 3840), (3000, 4000), (3600, 2400)]
"""(width, height) of the canvases, used in turn; all shrink at least 2.7x at 1,024 visual tokens"""
PATTERNS = ("horizontal lines", "vertical lines", "checkerboard", "solid (no pattern)")
"""the four answers (also the choices, shuffled per question)"""
CARD_COLOURS = {
    "red": (205, 30, 35),
    "blue": (35, 70, 205),
    "green": (30, 150, 60),
    "orange": (240, 140, 20),
    "purple": (125, 45, 165),
    "black": (25, 25, 25),
    "yellow": (235, 205, 25),
}
"""the frame colours that name a card in the question"""
INKS = [(30, 30, 160), (160, 20, 20), (20, 110, 40), (20, 20, 20), (110, 30, 120), (10, 90, 110)]
"""glyph ink colours (dark, so the pattern has contrast on the white card)"""
PAPER = (245, 245, 245)
"""the card's colour, and the glyph's background"""
GLYPH_SIDES = (36, 48)
"""range of the glyph's side in pixels"""
FADE = 6
"""pixels over which a glyph's pattern fades into its mean colour at each edge"""
CARD_SIDES = (150, 260)
"""range of a card's side in pixels"""
VIEW_TOKENS = 1024
"""the visual-token budget at which the pattern is gone (the paper's low budget)"""
JPEG = {"format": "JPEG", "quality": 95, "subsampling": 0}
"""how images are stored: 4:4:4 keeps 1-px colour patterns"""


@dataclass(frozen=True)
class Glyph:
    box: tuple[int, int, int, int]
    """x1, y1, x2, y2 (exclusive) in canvas pixels; square"""
    pattern: int
    """index into PATTERNS"""
    ink: tuple[int, int, int]
    """ink colour"""


@dataclass(frozen=True)
class Card:
    box: tuple[int, int, int, int]
    """x1, y1, x2, y2 (exclusive) of the card, frame included"""
    colour: str
    """the frame's colour name (a key of CARD_COLOURS)"""
    glyph: Glyph
    """the glyph on the card"""


@dataclass(frozen=True)
class Scene:
    """Everything that decides one image and its question; :func:`draw` renders it (the same pixels every time)."""

    width: int
    height: int
    noise_seed: int
    """seed of the background texture"""
    shapes: tuple[tuple[int, tuple[int, int, int, int], tuple[int, int, int]], ...]
    """clutter: (category, box, colour), drawn first"""
    tiles: tuple[Glyph, ...]
    """loose patterned tiles among the clutter (distractors)"""
    cards: tuple[Card, ...]
    """the cards, drawn last"""
    target: int
    """index of the card the question asks about"""
    order: tuple[int, ...]
    """PATTERNS indices in choice order (A, B, C, D)"""

    @property
    def question(self) -> str:
        return f"What fills the small square on the card with the {self.cards[self.target].colour} border?"

    @property
    def choices(self) -> list[str]:
        return [PATTERNS[i] for i in self.order]

    @property
    def answer(self) -> str:
        return LETTERS[self.order.index(self.cards[self.target].glyph.pattern)]

    @property
    def boxes(self) -> list[tuple[int, int, int, int]]:
        """Nested, smallest first: the glyph, its card, the card grown by one card width (clipped to the canvas)."""
        card = self.cards[self.target]
        x1, y1, x2, y2 = card.box
        side = x2 - x1
        region = (max(0, x1 - side), max(0, y1 - side), min(self.width, x2 + side), min(self.height, y2 + side))
        return [card.glyph.box, card.box, region]

    def with_target(self, pattern: int | None = None, ink: tuple[int, int, int] | None = None) -> "Scene":
        """The same scene with the asked-about glyph's pattern or ink replaced (the counterfactual of the tests)."""
        card = self.cards[self.target]
        glyph = dataclasses.replace(
            card.glyph,
            pattern=card.glyph.pattern if pattern is None else pattern,
            ink=card.glyph.ink if ink is None else ink,
        )
        cards = list(self.cards)
        cards[self.target] = dataclasses.replace(card, glyph=glyph)
        return dataclasses.replace(self, cards=tuple(cards))


def plan_scene(seed: int, index: int) -> Scene:
    """The scene of image ``index`` for ``seed``."""
    rng = np.random.default_rng([seed, index])
    width, height = CANVASES[index % len(CANVASES)]
    shapes = []
    for _ in range(int(rng.integers(80, 161))):
        side = int(np.exp(rng.uniform(np.log(20), np.log(400))))  # many small, a few large
        w, h = max(4, int(side * rng.uniform(0.6, 1.6))), side
        x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        shapes.append((int(rng.integers(0, len(CATEGORIES))), (x, y, x + w, y + h), colour))
    tiles = []
    for _ in range(int(rng.integers(10, 21))):
        side = int(rng.integers(GLYPH_SIDES[0], GLYPH_SIDES[1] + 1))
        x, y = int(rng.integers(0, width - side)), int(rng.integers(0, height - side))
        tiles.append(_glyph(rng, (x, y, x + side, y + side)))
    cards: list[Card] = []
    colours = list(CARD_COLOURS)
    rng.shuffle(colours)
    for colour in colours[: int(rng.integers(3, 6))]:
        for _ in range(200):  # rejection sampling: cards never touch (a scene has room for many more)
            side = int(rng.integers(CARD_SIDES[0], CARD_SIDES[1] + 1))
            x, y = int(rng.integers(0, width - side)), int(rng.integers(0, height - side))
            box = (x, y, x + side, y + side)
            if all(_apart(box, other.box, side) for other in cards):
                break
        else:
            continue
        frame = max(6, side // 20)
        glyph_side = int(rng.integers(GLYPH_SIDES[0], GLYPH_SIDES[1] + 1))
        margin = frame + 8
        gx = x + int(rng.integers(margin, side - margin - glyph_side + 1))
        gy = y + int(rng.integers(margin, side - margin - glyph_side + 1))
        cards.append(Card(box, colour, _glyph(rng, (gx, gy, gx + glyph_side, gy + glyph_side))))
    order = tuple(int(i) for i in rng.permutation(len(PATTERNS)))
    target = int(rng.integers(0, len(cards)))
    return Scene(width, height, int(rng.integers(0, 2**31)), tuple(shapes), tuple(tiles), tuple(cards), target, order)


def _glyph(rng: np.random.Generator, box: tuple[int, int, int, int]) -> Glyph:
    return Glyph(box, int(rng.integers(0, len(PATTERNS))), INKS[int(rng.integers(0, len(INKS)))])


def _apart(a: tuple[int, int, int, int], b: tuple[int, int, int, int], gap: int) -> bool:
    return a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]


def glyph_pixels(glyph: Glyph) -> np.ndarray:
    """The glyph as an ``(h, w, 3)`` uint8 array: its pattern faded into its mean colour over ``FADE`` px."""
    x1, y1, x2, y2 = glyph.box
    h, w = y2 - y1, x2 - x1
    y, x = np.mgrid[0:h, 0:w]
    sign = [y % 2 == 1, x % 2 == 1, (x + y) % 2 == 1, None][glyph.pattern]  # True: ink, False: paper
    modulation = np.zeros((h, w)) if sign is None else np.where(sign, 1.0, -1.0)
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(FADE) + 0.5) / FADE)
    window = [np.ones(n) for n in (h, w)]
    for values in window:
        values[:FADE], values[-FADE:] = ramp, ramp[::-1]
    ink, paper = np.array(glyph.ink, float), np.array(PAPER, float)
    pixels = (ink + paper) / 2 + (modulation * np.outer(*window))[..., None] * (ink - paper) / 2
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


def draw(scene: Scene) -> Image.Image:
    """Render a scene (RGB, ``width x height``)."""
    image = Image.fromarray(_background(scene.noise_seed, scene.width, scene.height), "RGB")
    canvas = ImageDraw.Draw(image)
    for category, box, colour in scene.shapes:
        draw_shape(canvas, category, box, colour)
    for tile in scene.tiles:
        image.paste(Image.fromarray(glyph_pixels(tile)), tile.box[:2])
    for card in scene.cards:
        x1, y1, x2, y2 = card.box
        frame = max(6, (x2 - x1) // 20)
        canvas.rectangle((x1, y1, x2 - 1, y2 - 1), fill=CARD_COLOURS[card.colour])
        canvas.rectangle((x1 + frame, y1 + frame, x2 - 1 - frame, y2 - 1 - frame), fill=PAPER)
        image.paste(Image.fromarray(glyph_pixels(card.glyph)), card.glyph.box[:2])
    return image


def _background(seed: int, width: int, height: int) -> np.ndarray:
    # smooth colour blotches over a gradient, with mild pixel noise (strong noise would only bloat the JPEGs)
    rng = np.random.default_rng(seed)
    grey = rng.integers(70, 186, size=(max(2, height // 120), max(2, width // 120), 1))
    coarse = (grey + rng.integers(-45, 46, size=(*grey.shape[:2], 3))).astype(np.uint8)  # muted colours
    pixels = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
    pixels += np.linspace(-30, 30, width, dtype=np.float32).astype(np.int16)[None, :, None]
    pixels += rng.integers(-2, 3, size=(height, width, 1), dtype=np.int16)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def encode(image: Image.Image) -> bytes:
    """The image file's bytes as written (JPEG, see :data:`JPEG`)."""
    buffer = io.BytesIO()
    image.save(buffer, **JPEG)
    return buffer.getvalue()


def item_id(index: int) -> str:
    return f"synthvqa_{index:05d}"


def synth_vqa(out: str | Path, num_images: int, seed: int = 0, overwrite: bool = False, progress: bool = True) -> Path:
    """Write ``num_images`` questions under ``out`` (images, manifest, preview); returns the manifest path.

    Refuses an existing non-empty ``out`` unless ``overwrite``, which replaces this command's own files there
    (``manifest.jsonl``, ``preview.png``, ``images/synthvqa_*.jpg``) and leaves anything else alone.
    """
    out = Path(out)
    if num_images < 1:
        raise UserError(f"--num-images must be >= 1, got {num_images}")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; name a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise UserError(f"{out} exists and is not empty; pass --overwrite to replace it, or choose another --out")
        for path in [out / MANIFEST_NAME, out / "preview.png", *sorted((out / "images").glob("synthvqa_*.jpg"))]:
            path.unlink(missing_ok=True)
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    items = []
    for index in tqdm(range(num_images), desc="synth-vqa", unit="img", disable=not progress):
        scene = plan_scene(seed, index)
        path = images / f"{item_id(index)}.jpg"
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(encode(draw(scene)))
        tmp.replace(path)
        card = scene.cards[scene.target]
        extra = {"card": card.colour, "pattern": PATTERNS[card.glyph.pattern]}
        items.append(
            VqaItem(
                item_id(index),
                path.absolute(),
                scene.question,
                scene.answer,
                scene.width,
                scene.height,
                tuple(scene.choices),
                tuple(tuple(float(v) for v in box) for box in scene.boxes),
                extra,
            )
        )
    manifest = write_manifest(out / MANIFEST_NAME, items)
    from locus_data.preview import preview_manifest  # PIL drawing only when it runs

    preview_manifest(manifest, n=min(6, num_images), out=out / "preview.png")
    return manifest
