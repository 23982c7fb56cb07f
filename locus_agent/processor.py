"""Load a Qwen-VL processor from a checkpoint, also where torchvision is missing.

The stock ``Qwen2_5_VLProcessor`` / ``Qwen3VLProcessor`` declare a video processor, and transformers' video
processors need torchvision, so on a CPU-only machine without it ``AutoProcessor.from_pretrained`` fails (4.57:
``ImportError: AutoVideoProcessor requires the Torchvision library``) or silently returns the bare tokenizer.
LOCUS never feeds video, so we fall back to the same processor class without its video part. The subclass keeps the
stock class name as a prefix because EasyR1 picks its mrope function by a substring of the processor's class name.

transformers is imported lazily: the data tooling runs without it unless a processor is actually needed.
"""

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from locus_data.errors import UserError


VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>")
"""Qwen-VL markers the processor inserts around images; sampling one would break the next forward pass"""
# processor_class names found in released checkpoints -> transformers class names
_STOCK_PROCESSORS = {
    "Qwen2_5_VLProcessor": "Qwen2_5_VLProcessor",
    "Qwen2VLProcessor": "Qwen2VLProcessor",
    "Qwen3VLProcessor": "Qwen3VLProcessor",
}


@cache
def image_only(base: type) -> type:
    """A subclass of a Qwen-VL processor class that manages only the image processor and the tokenizer."""

    class ImageOnly(base):
        attributes = ["image_processor", "tokenizer"]  # transformers 4.x reads this list, 5.x the __init__ signature

        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            super().__init__(
                image_processor=image_processor,
                tokenizer=tokenizer,
                video_processor=None,
                chat_template=chat_template,
                **kwargs,
            )

    ImageOnly.__name__ = ImageOnly.__qualname__ = f"{base.__name__}ImageOnly"
    return ImageOnly


# the files a processor is made of (no weights): what measure-prompts may fetch for a hub id not in the cache
PROCESSOR_FILES = ["*.json", "*.txt", "*.jinja", "*.model", "*.tiktoken"]


class ModelNotFound(UserError):
    """A model path that is neither a local checkpoint directory nor a hub id available here."""


def looks_like_path(model: str) -> bool:
    """True for what the user meant as a path (a hub id is ``name`` or ``org/name``, never absolute or dotted)."""
    return model.startswith((".", "/", "~")) or model.count("/") > 1 or os.path.exists(model)


def resolve_model(model: str | Path, download: bool = False) -> Path:
    """The local directory of ``model``: itself, or a hub id's snapshot in the local Hugging Face cache.

    The cache is looked up with ``local_files_only`` (no network, whatever HF_HUB_OFFLINE says). With ``download``
    and HF_HUB_OFFLINE unset, a hub id missing from the cache fetches only its processor files.
    """
    text = str(model)
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    if looks_like_path(text):
        raise ModelNotFound(f"model {text} is not a directory; give a checkpoint folder or a hub id (org/name)")
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError
    except ImportError:
        raise ModelNotFound(
            f"model {text} is not a local directory and huggingface_hub (comes with transformers) is not installed "
            "to look it up; fix: pip install -e '.[eval]'"
        ) from None
    try:
        return Path(snapshot_download(text, local_files_only=True))
    except HFValidationError:
        raise ModelNotFound(f"model {text!r} is neither a local directory nor a valid hub id (org/name)") from None
    except LocalEntryNotFoundError:
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
        if not download or offline:
            raise ModelNotFound(
                f"model {text} is not a local directory and not in the Hugging Face cache"
                f"{' (HF_HUB_OFFLINE is set)' if offline else ''}; fix: huggingface-cli download {text}, or set "
                "MODEL_PATH to the checkpoint folder"
            ) from None
    try:
        return Path(snapshot_download(text, allow_patterns=PROCESSOR_FILES))
    except Exception as err:  # network, auth, or no such repo: all mean the same to the user
        raise ModelNotFound(f"cannot fetch {text} from the hub ({type(err).__name__}: {err})") from None


def processor_class_name(path: str | Path) -> str | None:
    """The ``processor_class`` a checkpoint declares, or None."""
    for name in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"):
        file = Path(path) / name
        if file.is_file():
            declared = json.loads(file.read_text(encoding="utf-8")).get("processor_class")
            if declared:
                return declared
    return None


def load_processor(path: str | Path, **kwargs: Any):
    """``AutoProcessor.from_pretrained(path)``, falling back to an image-only processor without torchvision.

    ``kwargs`` go to ``from_pretrained`` (e.g. ``min_pixels``/``max_pixels``). Raises ValueError when the checkpoint
    has no Qwen-VL processor at all, rather than returning a tokenizer that would silently drop the images.
    """
    import transformers  # heavy: loaded only when a model runs

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"checkpoint directory not found: {path}")
    try:
        processor = transformers.AutoProcessor.from_pretrained(path, **kwargs)
        if hasattr(processor, "image_processor"):
            return processor
    except (ImportError, OSError, TypeError, ValueError, AttributeError):
        pass  # the video processor needs torchvision; retry below without it
    declared = processor_class_name(path)
    stock = _STOCK_PROCESSORS.get((declared or "").removesuffix("ImageOnly"))
    if stock is None:
        raise ValueError(f"{path} declares processor_class={declared!r}; LOCUS needs a Qwen-VL processor")
    return image_only(getattr(transformers, stock)).from_pretrained(path, **kwargs)


def pixel_limits(processor: Any) -> tuple[int, int]:
    """``(min_pixels, max_pixels)`` the image processor's ``smart_resize`` really uses: the one reading of them.

    transformers 4.57 (slow and fast ``Qwen2VLImageProcessor``) resizes with the ``min_pixels``/``max_pixels``
    attributes when both are set, else with ``size``; ``from_pretrained(max_pixels=...)`` updates only the
    attributes, so ``size`` can be stale.
    """
    image_processor = processor.image_processor
    low, high = getattr(image_processor, "min_pixels", None), getattr(image_processor, "max_pixels", None)
    if low is None or high is None:
        size = image_processor.size
        low, high = size["shortest_edge"], size["longest_edge"]
    return int(low), int(high)


def set_pixel_limits(processor: Any, min_pixels: int | None, max_pixels: int | None) -> tuple[int, int]:
    """Give the processor these limits (None keeps its own) in both places it may read them; returns the limits."""
    own_low, own_high = pixel_limits(processor)
    low, high = min_pixels or own_low, max_pixels or own_high
    image_processor = processor.image_processor
    image_processor.min_pixels, image_processor.max_pixels = low, high
    image_processor.size = {
        **(getattr(image_processor, "size", None) or {}),
        "shortest_edge": low,
        "longest_edge": high,
    }
    return low, high


def vision_token_ids(processor: Any) -> set[int]:
    """Ids of the Qwen-VL vision markers the tokenizer has: a model must never write them itself."""
    tokenizer = processor.tokenizer
    ids = {tokenizer.convert_tokens_to_ids(token) for token in VISION_TOKENS}
    return {i for i in ids if i is not None and i != tokenizer.unk_token_id}


MODEL_TYPE_FRAMES = {"qwen2_5_vl": "qwen2_5_vl", "qwen3_vl": "qwen3_vl", "qwen3_vl_moe": "qwen3_vl"}
"""``config.json`` ``model_type`` -> the frame the model writes boxes in (MiMo-VL declares ``qwen2_5_vl``)"""

ALLOW_FRAME_MISMATCH = "--allow-frame-mismatch"
"""the flag that runs a checkpoint under another family's frame on purpose (:func:`check_checkpoint_frame`)"""


def _read_json(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def checkpoint_model_type(path: str | Path) -> str | None:
    """``config.json`` ``model_type`` of a checkpoint folder, or None."""
    model_type = _read_json(Path(path) / "config.json").get("model_type")
    return model_type if isinstance(model_type, str) else None


def checkpoint_coord_frame(path: str | Path) -> str | None:
    """The box frame of a checkpoint from its ``config.json`` ``model_type``, or None when it names none we know.

    Read as JSON, without transformers; Qwen2-VL (0-1000 boxes, 28-pixel patches) fits neither agent frame.
    """
    return MODEL_TYPE_FRAMES.get(checkpoint_model_type(path))


def checkpoint_patch_grid(path: str | Path) -> tuple[int, int] | None:
    """``(patch_size, merge_size)`` of the checkpoint's image processor (``preprocessor_config.json``), or None."""
    config = _read_json(Path(path) / "preprocessor_config.json")
    patch, merge = config.get("patch_size"), config.get("merge_size")
    if isinstance(patch, int) and isinstance(merge, int):
        return patch, merge
    return None


def frame_mismatch(
    path: str | Path, coord_frame: str, name: str, model_type: str | None, grid: tuple[int, int] | None
) -> str | None:
    """Why a checkpoint of ``model_type`` with this patch grid cannot be scored in ``coord_frame``, or None.

    The pure rule behind :func:`check_checkpoint_frame`. ``original`` (stored-image pixels) fits any checkpoint.

    >>> frame_mismatch("m", "qwen2_5_vl", "--coord-frame", "qwen2_5_vl", (14, 2)) is None
    True
    >>> frame_mismatch("m", "qwen2_5_vl", "reward.coord_frame", "qwen3_vl", (16, 2))
    'reward.coord_frame=qwen2_5_vl expects 28-pixel patches, but m is a qwen3_vl checkpoint whose processor uses 32 \
(patch 16 x merge 2): every box would be read in the wrong frame'
    >>> frame_mismatch("m", "qwen3_vl", "--coord-frame", "qwen2_5_vl", None)
    '--coord-frame=qwen3_vl, but m is a qwen2_5_vl checkpoint, which writes boxes in the qwen2_5_vl frame: every box \
would be read in the wrong frame'
    """
    from locus_reward.frames import BACKBONES

    if coord_frame not in BACKBONES:
        return None
    expected = BACKBONES[coord_frame].factor
    what = f"a {model_type} checkpoint" if model_type else "a checkpoint"
    if grid is not None and grid[0] * grid[1] != expected:
        return (
            f"{name}={coord_frame} expects {expected}-pixel patches, but {path} is {what} whose processor uses "
            f"{grid[0] * grid[1]} (patch {grid[0]} x merge {grid[1]}): every box would be read in the wrong frame"
        )
    frame = MODEL_TYPE_FRAMES.get(model_type)
    if frame is not None and frame != coord_frame:
        return (
            f"{name}={coord_frame}, but {path} is {what}, which writes boxes in the {frame} frame: every box would "
            "be read in the wrong frame"
        )
    return None


def check_checkpoint_frame(
    path: str | Path,
    coord_frame: str,
    name: str,
    fix: str | None = None,
    override: str | None = ALLOW_FRAME_MISMATCH,
    where: str = "",
) -> None:
    """Raise UserError when the checkpoint in ``path`` writes boxes in another frame than ``coord_frame``.

    The one check of a recipe's (or a flag's) frame against a checkpoint, run before any model loads: the family
    comes from ``config.json`` ``model_type`` and the processor's patch grid (``preprocessor_config.json``), both
    read as JSON. A checkpoint that names neither passes (nothing to compare). ``name`` is how the user wrote the
    frame (``reward.coord_frame``, ``--coord-frame``, ``--recipe FILE``); ``fix`` replaces the default advice
    (``set NAME=FRAME``); ``override`` is the flag that skips this check, named in the message.
    """
    from locus_reward.frames import BACKBONES

    model_type, grid = checkpoint_model_type(path), checkpoint_patch_grid(path)
    why = frame_mismatch(path, coord_frame, name, model_type, grid)
    if why is None:
        return
    fits = [f for f, backbone in BACKBONES.items() if grid is not None and backbone.factor == grid[0] * grid[1]]
    fit = MODEL_TYPE_FRAMES.get(model_type) or (fits[0] if fits else "original")
    advice = fix.format(frame=fit) if fix else f"set {name}={fit}"
    also = f", or pass {override} if you mean it" if override else ""
    raise UserError(f"{where}{why}; {advice}{also}")
