"""The build config: one dataclass, loaded as OmegaConf ``structured(DataConfig)`` <- YAML <- ``key=value`` overrides
(:func:`locus_data.yaml_config.load_structured`, the loader of every LOCUS config).

Unknown keys (in the YAML or on the command line) are errors naming the key, as in EasyR1's own config loading, so a
typo such as ``tiny_ration=0.8`` cannot silently build the default mix.

>>> cfg = load_config(None, ["num_train=10", "num_val=5", "tiny_ratio=0.6"])
>>> cfg.bin_counts("train")
{'tiny': 6, 'small': 4, 'large': 0}
>>> load_config(None, ["tiny_ration=0.8"])
Traceback (most recent call last):
...
locus_data.errors.UserError: unknown data config key 'tiny_ration'; did you mean 'tiny_ratio'?
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from locus_data.errors import UserError
from locus_data.yaml_config import load_structured


SPLITS = ("train", "val")
"""the splits of a built dataset, each in its file :func:`split_path`"""
SIZE_BINS = ("tiny", "small", "large")
CUE_SOURCES = ("object", "random")
IMAGE_MODES = ("bytes", "paths")
CUE_FORMATS = ("png", "jpeg")


def split_path(data_dir: str | Path, split: str) -> Path:
    """The file holding ``split`` in a built dataset: ``DATA/<split>.parquet``."""
    return Path(data_dir) / f"{split}.parquet"


@dataclass
class DataConfig:
    """How to turn COCO-format object boxes into LOCUS cue-search examples."""

    num_train: int = 99500
    """examples in train.parquet"""
    num_val: int = 500
    """examples in val.parquet; validation images never appear in train"""
    seed: int = 0
    """seeds the image order, the val/train split, the per-image candidate choice and every per-example draw"""
    tiny_ratio: float = 0.7
    """share of tiny cues in each split; the count is exactly round(tiny_ratio * N)"""
    large_ratio: float = 0.0
    """share of large cues in each split (exactly round(large_ratio * N)); the rest of the split is small cues"""
    tiny_area: list[float] = field(default_factory=lambda: [0.0, 0.01])
    """[lo, hi): object-box area / image area (COCO bbox w*h, not the segmentation area) of a tiny cue"""
    small_area: list[float] = field(default_factory=lambda: [0.01, 0.05])
    """[lo, hi): area ratio of a small cue"""
    large_area: list[float] = field(default_factory=lambda: [0.10, 1.01])
    """[lo, hi): area ratio of a large cue (hi above 1 so a whole-image box counts)"""
    min_crop_size: int = 16
    """objects whose box (clamped to the image) has a side below this many pixels are skipped, never enlarged"""
    max_cues_per_image: int = 4
    """at most this many cues of each size bin from one source image; fewer means more (and more varied) images"""
    cue_source: str = "object"
    """object: the cue is an object box; random: a window of the same size placed uniformly at random in the image"""
    augment_bins: list[str] = field(default_factory=lambda: ["tiny"])
    """size bins whose cues get the padding and scale draws below (the paper states them for tiny cues)"""
    pad_range: list[float] = field(default_factory=lambda: [0.0, 0.1])
    """each side of the box grows by a fraction drawn from this range of the box width (left/right) or height"""
    scale_range: list[float] = field(default_factory=lambda: [0.8, 2.0])
    """the cut cue image is rescaled by a factor drawn from this range"""
    min_cue_side: int = 32
    """after scaling, a cue with a side below this is upsampled (aspect kept) so Qwen2.5-VL (28) and Qwen3-VL (32)
    processors accept it"""
    max_cue_aspect: float = 200.0
    """cues with a longer/shorter side ratio above this are skipped (the Qwen processors reject them)"""
    full_max_pixels: int | None = None
    """information-gap variant: store the full image downsampled to at most this many pixels (cue still cut from the
    original resolution; the answer is in the stored image's frame); null stores the source image unchanged"""
    image_mode: str = "bytes"
    """bytes: images are {bytes, path} structs (EasyR1 reads the bytes); paths: images are two absolute file paths
    (the source image, and a cue written under OUT/cues/), so the full images are not copied"""
    cue_format: str = "jpeg"
    """encoding of the cue image: jpeg (quality jpeg_quality, 4:4:4 chroma; ~10x faster to encode than png and
    visually lossless at 95) or png (lossless)"""
    jpeg_quality: int = 95
    """JPEG quality for re-encoded images (non-RGB or EXIF-rotated sources, info-gap full images, jpeg cues)"""
    hf_image_features: bool = False
    """also write Hugging Face datasets Image feature metadata, so datasets.load_dataset decodes images to PIL
    (EasyR1 accepts PIL images too)"""
    allow_shortfall: bool = False
    """if the source runs out of candidates, write what there is (and say so in stats) instead of failing"""
    chunk_images: int = 256
    """images per committed chunk; an interrupted build resumes from the last one (changing it changes the row
    groups, not the rows, so a resume must keep it)"""
    row_group_size: int = 128
    """rows per Parquet row group in train/val.parquet (bounds the memory a reader needs per group)"""

    def split_size(self, split: str) -> int:
        """Examples in ``split`` (train or val)."""
        train, _ = SPLITS
        return self.num_train if split == train else self.num_val

    def bin_counts(self, split: str) -> dict[str, int]:
        """Exact number of examples of each size bin in ``split`` (train or val)."""
        total = self.split_size(split)
        tiny = round(self.tiny_ratio * total)
        large = round(self.large_ratio * total)
        return {"tiny": tiny, "small": total - tiny - large, "large": large}

    def bin_range(self, size_bin: str) -> tuple[float, float]:
        lo, hi = getattr(self, f"{size_bin}_area")
        return float(lo), float(hi)


def check_config(cfg: DataConfig) -> None:
    """Raise UserError naming the first inconsistent field."""

    def bad(message: str) -> None:
        raise UserError(f"data config: {message}")

    if cfg.num_train < 0 or cfg.num_val < 0 or cfg.num_train + cfg.num_val == 0:
        bad(f"num_train and num_val must be >= 0 and not both 0, got {cfg.num_train}, {cfg.num_val}")
    if not 0 <= cfg.tiny_ratio <= 1 or not 0 <= cfg.large_ratio <= 1 or cfg.tiny_ratio + cfg.large_ratio > 1:
        bad(f"tiny_ratio + large_ratio must lie in [0, 1], got {cfg.tiny_ratio} + {cfg.large_ratio}")
    for split in SPLITS:
        if min(cfg.bin_counts(split).values()) < 0:
            bad(f"tiny_ratio/large_ratio round to more than num_{split} examples")
    for size_bin in SIZE_BINS:
        area = getattr(cfg, f"{size_bin}_area")
        if len(area) != 2 or not 0 <= area[0] < area[1]:
            bad(f"{size_bin}_area must be [lo, hi] with 0 <= lo < hi, got {list(area)}")
    ranges = sorted(cfg.bin_range(b) for b in SIZE_BINS)
    if any(a[1] > b[0] for a, b in zip(ranges, ranges[1:])):
        bad(f"size bins overlap: {[list(r) for r in ranges]}")
    for name in ("pad_range", "scale_range"):
        lo_hi = getattr(cfg, name)
        if len(lo_hi) != 2 or not 0 <= lo_hi[0] <= lo_hi[1]:
            bad(f"{name} must be [lo, hi] with 0 <= lo <= hi, got {list(lo_hi)}")
    if cfg.scale_range[0] <= 0:
        bad(f"scale_range must be positive, got {list(cfg.scale_range)}")
    unknown = set(cfg.augment_bins) - set(SIZE_BINS)
    if unknown:
        bad(f"augment_bins has unknown bins {sorted(unknown)}; expected some of {list(SIZE_BINS)}")
    for name, allowed in (("cue_source", CUE_SOURCES), ("image_mode", IMAGE_MODES), ("cue_format", CUE_FORMATS)):
        if getattr(cfg, name) not in allowed:
            bad(f"{name} must be one of {list(allowed)}, got {getattr(cfg, name)!r}")
    if cfg.min_crop_size < 1 or cfg.max_cues_per_image < 1 or cfg.chunk_images < 1 or cfg.row_group_size < 1:
        bad("min_crop_size, max_cues_per_image, chunk_images and row_group_size must be >= 1")
    if cfg.min_cue_side < 32:
        bad(f"min_cue_side must be >= 32 (the Qwen3-VL processor factor), got {cfg.min_cue_side}")
    if cfg.full_max_pixels is not None and cfg.full_max_pixels < 32 * 32:
        bad(f"full_max_pixels must be >= 1024 or null, got {cfg.full_max_pixels}")
    if not 1 <= cfg.jpeg_quality <= 100:
        bad(f"jpeg_quality must be in 1..100, got {cfg.jpeg_quality}")


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> DataConfig:
    """Defaults <- YAML file <- ``key=value`` overrides, checked; raises UserError naming the problem."""
    cfg: DataConfig = load_structured(DataConfig, path, overrides, "data config")
    check_config(cfg)
    return cfg


def to_yaml(cfg: DataConfig) -> str:
    from omegaconf import OmegaConf  # as in load_config: pool workers never need it

    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def to_dict(cfg: DataConfig) -> dict[str, Any]:
    from omegaconf import OmegaConf  # as in load_config: pool workers never need it

    return OmegaConf.to_container(OmegaConf.structured(cfg))  # type: ignore[return-value]
