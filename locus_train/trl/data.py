"""``locus-data build`` parquet rows -> TRL's conversational vision rows, with EasyR1's prompt text.

Each row becomes ``{"prompt": [one user turn], "images": [full image, cue], "answer": gt_json}``: the turn is
:func:`locus_train.prompting.render_prompt` + :func:`~locus_train.prompting.build_messages` of the ``problem``
(the code EasyR1's jinja path is mirrored by), its image parts sit where the ``<image>`` markers were, and TRL fills
them from ``images`` in order, so the full image comes first and the cue second. ``answer`` reaches the reward
function as a keyword argument. Images are opened as EasyR1 opens them (:func:`locus_data.images.open_image`, then
RGB) but not resized: the processor's own ``smart_resize`` is the only resize under TRL.

Rows are converted on access (``set_transform``), so a 100K-row split stays memory-mapped and only the batch in hand
is decoded.
"""

from pathlib import Path
from typing import Any

from locus_data.errors import UserError
from locus_data.images import open_image
from locus_data.problems import IMAGE_MARKER
from locus_data.rows import read_batches
from locus_data.schema import ANSWER, IMAGES, PROBLEM
from locus_train.images import process_image
from locus_train.prompting import build_messages, render_prompt


PROMPT = "prompt"
"""TRL's conversational prompt column"""
TRL_COLUMNS = (PROMPT, IMAGES, ANSWER)
"""a TRL row: the prompt, then our ``images`` and ``answer`` columns under their own names (TRL reads ``images``; it
passes ``answer`` to the reward function as the keyword of that name)"""


def to_trl_row(problem: str, images: list[Any], answer: str, format_prompt: str | None) -> dict[str, Any]:
    """One dataset row in TRL's conversational vision format.

    >>> from PIL import Image
    >>> images = [Image.new("L", (64, 48)), Image.new("RGB", (32, 32))]
    >>> row = to_trl_row("<image>\\nFull.\\n<image>\\nCue.", images, '{"box": []}', "{{ content }} Answer.")
    >>> [part["type"] for part in row["prompt"][0]["content"]], row["prompt"][0]["content"][-1]["text"]
    (['image', 'text', 'image', 'text'], '\\nCue. Answer.')
    >>> [(image.mode, image.size) for image in row["images"]]
    [('RGB', (64, 48)), ('RGB', (32, 32))]
    """
    # EasyR1's opening and RGB conversion, without its pre-resize: under TRL only the processor resizes
    opened = [process_image(image, None, None) for image in images]
    return {PROMPT: build_messages(render_prompt(problem, format_prompt)), IMAGES: opened, ANSWER: answer}


def _transform(format_prompt: str | None):
    def transform(batch: dict[str, list]) -> dict[str, list]:
        rows = [to_trl_row(p, i, a, format_prompt) for p, i, a in zip(batch[PROBLEM], batch[IMAGES], batch[ANSWER])]
        return {key: [row[key] for row in rows] for key in TRL_COLUMNS}

    return transform


def load_split(
    path: str | Path, format_prompt: str | None, max_samples: int | None = None, cache_dir: str | None = None
):
    """A ``datasets.Dataset`` of one parquet split whose rows read as :func:`to_trl_row` output."""
    import datasets  # heavy, and only a training run needs it

    dataset = datasets.load_dataset(
        "parquet", data_files=str(path), split="train", cache_dir=cache_dir, columns=[PROBLEM, IMAGES, ANSWER]
    )
    if max_samples is not None:
        dataset = dataset.select(range(min(max_samples, len(dataset))))
    dataset.set_transform(_transform(format_prompt))
    return dataset


def count_images(path: str | Path) -> tuple[int, int]:
    """``(<image> markers, images)`` of the first row of a parquet split, read without decoding the file."""
    rows = next(read_batches(path, [PROBLEM, IMAGES], limit=1), None)
    if rows is None or rows.num_rows == 0:
        raise UserError(f"{path} has no rows; point data.dir at a built dataset (locus-data build)")
    first = rows.to_pylist()[0]
    return str(first[PROBLEM]).count(IMAGE_MARKER), len(first[IMAGES] or [])


def check_image_headers(path: str | Path, limit: int | None = None) -> int:
    """Open the header of every image in the first ``limit`` rows (all: None) of a split, decoding nothing.

    An image over the pixel limit (a decompression bomb EasyR1's and TRL's loaders refuse) or one PIL cannot identify
    is a one-line UserError naming its row, before any weight loads rather than when the row is sampled hours in.
    Returns the number of images opened.
    """
    from tqdm import tqdm  # progress on large splits (reading the image bytes is the cost)

    opened = 0
    rows = tqdm(desc=f"image headers {Path(path).name}", unit="row", leave=False, disable=None)
    for batch in read_batches(path, [IMAGES], limit=limit):
        for images in batch.column(IMAGES).to_pylist():
            for k, entry in enumerate(images or []):
                name = f"{path} row {rows.n} image {k}"
                try:
                    open_image(entry, name).close()
                except UserError:
                    raise
                except ValueError as err:
                    raise UserError(f"{name}: {err}") from None
                opened += 1
            rows.update()
    rows.close()
    return opened
