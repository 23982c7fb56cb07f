"""Load a Qwen-VL processor from a checkpoint, also where torchvision is missing.

The stock ``Qwen2_5_VLProcessor`` / ``Qwen3VLProcessor`` declare a video processor, and transformers' video
processors need torchvision, so on a CPU-only machine without it ``AutoProcessor.from_pretrained`` fails (4.57:
``ImportError: AutoVideoProcessor requires the Torchvision library``) or silently returns the bare tokenizer.
LOCUS never feeds video, so we fall back to the same processor class without its video part. The subclass keeps the
stock class name as a prefix because EasyR1 picks its mrope function by a substring of the processor's class name.

transformers is imported lazily: the data tooling runs without it unless a processor is actually needed.
"""

import json
from functools import cache
from pathlib import Path
from typing import Any


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
