"""What a build must fill and whether it can: the split fill order, the capacity check made before anything is
decoded, and the shortfall left after the walk."""

from collections import Counter

from locus_data.coco_index import SourceImage
from locus_data.config import SIZE_BINS, SPLITS, DataConfig
from locus_data.errors import UserError


FILL_ORDER = tuple(reversed(SPLITS))  # val first: it takes its images from the front of the walk


def check_capacity(cfg: DataConfig, images: list[SourceImage]) -> None:
    """Fail before decoding anything when the annotations cannot possibly fill the requested bins."""
    capacity: Counter = Counter()
    for img in images:
        per_bin = Counter(c.size_bin for c in img.candidates)
        for size_bin, n in per_bin.items():
            capacity[size_bin] += min(n, cfg.max_cues_per_image)
    problems = []
    for size_bin in SIZE_BINS:
        need = sum(cfg.bin_counts(split)[size_bin] for split in SPLITS)
        if need > capacity[size_bin]:
            lo, hi = cfg.bin_range(size_bin)
            problems.append(
                f"{size_bin} (area ratio {lo:g}-{hi:g}): {need} needed, {capacity[size_bin]} candidates "
                f"(at most max_cues_per_image={cfg.max_cues_per_image} per image)"
            )
    if problems and not cfg.allow_shortfall:
        raise UserError(
            f"the annotations cannot fill the requested mix: {'; '.join(problems)}. "
            "Lower num_train/num_val, raise max_cues_per_image, or set allow_shortfall=true"
        )


def shortfall(cfg: DataConfig, counts: dict[str, dict[str, int]]) -> list[str]:
    """``"split bin have/need"`` for every bin the walk left short (``counts``: rows per split and bin)."""
    return [
        f"{split} {b} {counts[split][b]}/{n}"
        for split in FILL_ORDER
        for b, n in cfg.bin_counts(split).items()
        if counts[split][b] < n
    ]
