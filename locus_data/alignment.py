"""Does a row's ground-truth box point at its cue? A pixel comparison, for ``locus-data validate``.

The builder cuts each cue from the source image at the crop window, which is the ground-truth box (rescaled when
the stored full image was downsampled). So the full image's pixels inside the answer box, resized to the cue's
size, look like the cue. A box moved by a few pixels (or a cue from another row) breaks that, and no size or
column check sees it. :func:`check_alignment` compares, in grey levels at a small common size, the cue with the
window under the box and with windows around it (shifted by a few pixels in 8 directions), using normalised cross
correlation (insensitive to JPEG re-encoding, blur from downsampling, and brightness): the row is misaligned when
the window under the box matches poorly (a large shift, another cue) or a shifted window matches clearly better (a
small shift). A cue too flat to tell (a patch of sky) is not judged.
"""

from dataclasses import dataclass

import numpy as np
from PIL import Image


COMPARE_SIDE = 48
"""long side of the common size the cue and the windows are compared at (pixels)"""
SHIFT_FRACTIONS = (0.05, 0.1, 0.2)
"""probe shifts as fractions of the box's shorter side (at least 1 px each)"""
MIN_CONTRAST = 4.0
"""grey-level standard deviation under which a cue is too flat to judge"""
POOR_MATCH = 0.5
"""correlation under which the window under the box is not the cue at all"""
BETTER_BY = 0.08
"""a shifted window this much more correlated than the one under the box means the box is off"""


@dataclass(frozen=True)
class Alignment:
    """How well the cue matches the window under its box, and the best shifted window."""

    at_box: float
    """correlation of the cue with the window under the box (1: identical up to brightness and contrast)"""
    best_shifted: float
    """the highest correlation among the shifted windows"""
    offset: tuple[float, float]
    """the shift (dx, dy) of that window, in full-image pixels"""
    judged: bool
    """False when the cue is too flat to tell"""

    @property
    def ok(self) -> bool:
        """True unless the pixels say the box is not where the cue was cut."""
        if not self.judged:
            return True
        return self.at_box >= POOR_MATCH and self.best_shifted - self.at_box < BETTER_BY

    def describe(self) -> str:
        """What a validator reports for a misaligned row."""
        dx, dy = self.offset
        return (
            f"cue matches the box's pixels at correlation {self.at_box:.2f}; "
            f"shifted by ({dx:+.0f}, {dy:+.0f}) px: {self.best_shifted:.2f}"
        )


def _grey(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(image.convert("L").resize(size, Image.Resampling.BILINEAR), dtype=np.float64)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0


def check_alignment(full: Image.Image, cue: Image.Image, box: tuple[float, float, float, float]) -> Alignment:
    """Compare ``cue`` with ``full``'s pixels under ``box`` (x1, y1, x2, y2 in ``full``'s pixels) and around it.

    >>> rng = np.random.default_rng(0)
    >>> full = Image.fromarray(rng.integers(0, 256, (120, 160), dtype=np.uint8))
    >>> cue = full.crop((40, 30, 80, 70)).resize((64, 64))
    >>> check_alignment(full, cue, (40, 30, 80, 70)).ok
    True
    >>> check_alignment(full, cue, (44, 30, 84, 70)).ok  # the box moved 4 px right
    False
    """
    x1, y1, x2, y2 = box
    width, height = x2 - x1, y2 - y1
    scale = COMPARE_SIDE / max(cue.width, cue.height, 1)
    size = (max(4, round(cue.width * scale)), max(4, round(cue.height * scale)))
    target = _grey(cue, size)
    if target.std() < MIN_CONTRAST or width <= 0 or height <= 0:
        return Alignment(1.0, 1.0, (0.0, 0.0), judged=False)
    grey_full = full.convert("L")

    def at(dx: float, dy: float) -> float | None:
        window = (x1 + dx, y1 + dy, x2 + dx, y2 + dy)
        if window[0] < 0 or window[1] < 0 or window[2] > full.width or window[3] > full.height:
            return None
        patch = grey_full.resize(size, Image.Resampling.BILINEAR, box=window)
        return _correlation(target, np.asarray(patch, dtype=np.float64))

    at_box = at(0.0, 0.0)
    if at_box is None:  # a box outside the image is another check's finding
        return Alignment(1.0, 1.0, (0.0, 0.0), judged=False)
    best, offset = -1.0, (0.0, 0.0)
    for fraction in SHIFT_FRACTIONS:
        step = max(1.0, fraction * min(width, height))
        for dx in (-step, 0.0, step):
            for dy in (-step, 0.0, step):
                if dx == dy == 0.0:
                    continue
                value = at(dx, dy)
                if value is not None and value > best:
                    best, offset = value, (dx, dy)
    return Alignment(at_box, best, offset, judged=True)
