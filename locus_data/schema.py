"""The Parquet layout of train/val.parquet: the EasyR1 columns, then metadata, and how row groups are encoded.

EasyR1 reads ``problem`` (prompt_key), ``images`` (image_key) and ``answer`` (answer_key); every other column passes
through untouched. ``images`` is a list of two ``{bytes, path}`` structs (the layout of a Hugging Face ``Image``
feature, which EasyR1's ``process_image`` opens from ``bytes``), or, with ``image_mode=paths``, two absolute file
paths, which EasyR1 opens directly.

Image bytes are written dictionary-encoded, one dictionary per row group: the rows of one source image are adjacent
and repeat its full image, so each full image is stored once per row group instead of once per row (files several
times smaller, and far less to write). This is plain Parquet: every reader returns ordinary binary values, and the
Arrow schema stored in the file does not mention it (the files are written without an embedded Arrow schema, so
readers see exactly :func:`schema`).

Arrays are assembled from numpy buffers rather than with ``pa.array``: faster for 100K rows of image bytes, and it
keeps pyarrow from importing pandas (half a second) to sniff its input.

numpy and pyarrow are imported by the functions that build Arrow data, not with the column names: ``locus-data build``
imports the names before it forks its pool, and both start threads of their own when loaded
(:func:`locus_data.worker.pool_start_method`). ``IMAGE_STRUCT`` and ``METADATA_FIELDS`` are built on first access.
"""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple

from locus_data.errors import UserError


if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa


PROBLEM, IMAGES, ANSWER = "problem", "images", "answer"
"""the columns EasyR1 reads: the recipes' ``data.prompt_key``, ``data.image_key`` and ``data.answer_key``"""
EASYR1_COLUMNS = (PROBLEM, IMAGES, ANSWER)
IMAGE_ID, ANN_ID, SIZE_BIN, CUE_SOURCE, AREA_RATIO = "image_id", "ann_id", "size_bin", "cue_source", "area_ratio"
CROP_BOX, CUE_WIDTH, CUE_HEIGHT = "crop_box", "cue_width", "cue_height"
CUE_SCALE, CUE_UPSAMPLED, SPLIT = "cue_scale", "cue_upsampled", "split"
CATEGORY_ID, OBJ_BOX, FULL_REENCODED = "category_id", "obj_box", "full_reencoded"
SOURCE_FILE, SOURCE_WIDTH, SOURCE_HEIGHT = "source_file", "source_width", "source_height"
"""the metadata columns other modules read by name"""
# The VQA manifest's fields (:mod:`locus_data.vqa`: questions about high-resolution images, for LFPC): its answer
# field has the cue-search answer column's name, but holds the plain answer (the LFPC ground truth is built from it)
VQA_ID, VQA_IMAGE, VQA_QUESTION, VQA_ANSWER = "id", "image", "question", ANSWER
VQA_CHOICES, VQA_BOXES = "choices", "boxes"
VQA_VIEW_IMAGE, VQA_SELECTION = "view_image", "selection"


@cache
def _image_struct() -> pa.DataType:
    """``IMAGE_STRUCT``: one image of the ``images`` column, as a Hugging Face ``Image`` feature stores it."""
    import pyarrow as pa  # heavy: see the module docstring

    return pa.struct([("bytes", pa.binary()), ("path", pa.string())])


@cache
def _metadata_fields() -> list[pa.Field]:
    """``METADATA_FIELDS``: the metadata columns after EasyR1's, with their Arrow types."""
    import pyarrow as pa  # heavy: see the module docstring

    return [
        pa.field(SPLIT, pa.string()),
        pa.field(IMAGE_ID, pa.int64()),
        pa.field(ANN_ID, pa.int64()),  # -1: the cue is not an object (random crop)
        pa.field(CATEGORY_ID, pa.int64()),  # -1 for random crops
        pa.field(SIZE_BIN, pa.string()),
        pa.field(CUE_SOURCE, pa.string()),
        pa.field(AREA_RATIO, pa.float64()),  # object-box (or random window before padding) area / source image area
        pa.field(SOURCE_FILE, pa.string()),
        pa.field(SOURCE_WIDTH, pa.int32()),
        pa.field(SOURCE_HEIGHT, pa.int32()),
        pa.field(OBJ_BOX, pa.list_(pa.float64())),  # clamped object box in source pixels; null for random crops
        pa.field(CROP_BOX, pa.list_(pa.float64())),  # the cut window in source pixels (= answer box when not rescaled)
        pa.field(CUE_WIDTH, pa.int32()),
        pa.field(CUE_HEIGHT, pa.int32()),
        pa.field(CUE_SCALE, pa.float64()),  # drawn scale; the stored cue may be larger when cue_upsampled
        pa.field(CUE_UPSAMPLED, pa.bool_()),
        pa.field(FULL_REENCODED, pa.string()),  # null: images[0] holds the source file's bytes unchanged
    ]


def __getattr__(name: str) -> Any:
    # IMAGE_STRUCT and METADATA_FIELDS, built (importing pyarrow) when a module first imports them
    if name == "IMAGE_STRUCT":
        return _image_struct()
    if name == "METADATA_FIELDS":
        return _metadata_fields()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


STATISTICS_COLUMNS = [SPLIT, IMAGE_ID, ANN_ID, CATEGORY_ID, SIZE_BIN, CUE_SOURCE, AREA_RATIO]
"""the columns whose min/max statistics the writer keeps: filterable metadata (over image bytes they cost time and
help no reader)"""


def schema(image_mode: str) -> pa.Schema:
    """The columns and types of train/val.parquet as readers see them."""
    import pyarrow as pa  # heavy: see the module docstring

    images_type = pa.list_(_image_struct()) if image_mode == "bytes" else pa.list_(pa.string())
    fields = [pa.field(PROBLEM, pa.string()), pa.field(IMAGES, images_type), pa.field(ANSWER, pa.string())]
    return pa.schema(fields + _metadata_fields())


def write_schema(image_mode: str) -> pa.Schema:
    """:func:`schema` as handed to the writer: image bytes as a dictionary array (one dictionary per row group)."""
    import pyarrow as pa  # heavy: see the module docstring

    logical = schema(image_mode)
    if image_mode != "bytes":
        return logical
    struct = pa.struct([("bytes", pa.dictionary(pa.int32(), pa.binary())), ("path", pa.string())])
    return logical.set(logical.get_field_index(IMAGES), pa.field(IMAGES, pa.list_(struct)))


def hf_metadata(image_mode: str) -> dict[str, str]:
    """Hugging Face ``datasets`` feature metadata: ``load_dataset`` then decodes ``images`` to PIL images."""
    return {"huggingface": json.dumps({"info": {"features": _hf_features(schema(image_mode))}})}


def _hf_features(arrow_schema: pa.Schema) -> dict:
    import pyarrow as pa  # heavy: see the module docstring

    values = {
        pa.string(): "string",
        pa.int64(): "int64",
        pa.int32(): "int32",
        pa.float64(): "float64",
        pa.bool_(): "bool",
    }
    features = {}
    for f in arrow_schema:
        if f.name == IMAGES:
            features[f.name] = {"feature": {"_type": "Image"}, "_type": "List"}
        elif pa.types.is_list(f.type):
            features[f.name] = {"feature": {"dtype": values[f.type.value_type], "_type": "Value"}, "_type": "List"}
        else:
            features[f.name] = {"dtype": values[f.type], "_type": "Value"}
    return features


class SourceFile(NamedTuple):
    """A full image stored as the unchanged bytes of its source file: read straight into the column's buffer when
    the row group is built, so its bytes are copied once, from the page cache into the Parquet writer's input."""

    path: str
    nbytes: int


def _binary_values(values: list) -> pa.Array:
    """Binary array of ``bytes`` and :class:`SourceFile` values in one preallocated buffer."""
    import numpy as np  # heavy: see the module docstring
    import pyarrow as pa

    lengths = [v.nbytes if isinstance(v, SourceFile) else len(v) for v in values]
    offsets = _offsets(lengths)
    data = np.empty(int(offsets[-1]), dtype=np.uint8)
    view = memoryview(data)
    for value, start, end in zip(values, offsets[:-1].tolist(), offsets[1:].tolist()):
        if not isinstance(value, SourceFile):
            view[start:end] = value
            continue
        with open(value.path, "rb", buffering=0) as f:
            while start < end:
                got = f.readinto(view[start:end])
                if not got:
                    break
                start += got
            if start != end or f.read(1):
                raise UserError(
                    f"source image {value.path} changed size while the build used it; start the build again"
                )
    return pa.Array.from_buffers(pa.binary(), len(values), [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _buffer(values: Any, dtype: Any) -> pa.Buffer:
    import numpy as np  # heavy: see the module docstring
    import pyarrow as pa

    return pa.py_buffer(np.ascontiguousarray(values, dtype=dtype))


def _validity(values: list) -> pa.Buffer | None:
    import numpy as np  # heavy: see the module docstring
    import pyarrow as pa

    if all(v is not None for v in values):
        return None
    return pa.py_buffer(np.packbits(np.array([v is not None for v in values]), bitorder="little"))


def _offsets(lengths: list[int]) -> np.ndarray:
    import numpy as np  # heavy: see the module docstring

    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def column(values: list, arrow_type: pa.DataType) -> pa.Array:
    """An Arrow array of ``values`` (None is null) for the scalar and list types of :data:`METADATA_FIELDS`."""
    import numpy as np  # heavy: see the module docstring
    import pyarrow as pa

    n = len(values)
    if pa.types.is_string(arrow_type) or pa.types.is_binary(arrow_type):
        data = [b"" if v is None else v.encode() if isinstance(v, str) else v for v in values]
        offsets = pa.py_buffer(_offsets([len(v) for v in data]))
        return pa.Array.from_buffers(arrow_type, n, [_validity(values), offsets, pa.py_buffer(b"".join(data))])
    if pa.types.is_boolean(arrow_type):
        bits = np.packbits(np.array(values, dtype=bool), bitorder="little")
        return pa.Array.from_buffers(arrow_type, n, [None, pa.py_buffer(bits)])
    if pa.types.is_list(arrow_type):
        items = [item for v in values if v is not None for item in v]
        offsets = _offsets([0 if v is None else len(v) for v in values])
        child = column(items, arrow_type.value_type)
        return pa.Array.from_buffers(arrow_type, n, [_validity(values), pa.py_buffer(offsets)], children=[child])
    return pa.Array.from_buffers(arrow_type, n, [None, _buffer(values, arrow_type.to_pandas_dtype())])


def image_column(full: list, cues: list, image_mode: str, keys: list[int]) -> pa.Array:
    """The ``images`` column of one row group from per-row full-image and cue entries.

    In bytes mode entries are ``{bytes, path}`` dicts (``bytes`` may be a :class:`SourceFile`), and rows with the
    same ``keys`` value (the image id) share their full image, which the row group's dictionary then holds once (no
    hashing of image bytes needed).
    """
    import numpy as np  # heavy: see the module docstring
    import pyarrow as pa

    n = len(full)
    if image_mode != "bytes":
        flat = [entry for pair in zip(full, cues) for entry in pair]
        child = column(flat, pa.string())
    else:
        values: list[bytes | SourceFile] = []
        slot: dict[int, int] = {}
        indices = np.empty(2 * n, dtype=np.int32)
        for i, (f, c, key) in enumerate(zip(full, cues, keys)):
            if key not in slot:
                slot[key] = len(values)
                values.append(f["bytes"])
            indices[2 * i] = slot[key]
            indices[2 * i + 1] = len(values)
            values.append(c["bytes"])
        dictionary = _binary_values(values)
        data = pa.DictionaryArray.from_arrays(
            pa.Array.from_buffers(pa.int32(), 2 * n, [None, pa.py_buffer(indices)]), dictionary
        )
        paths = column([entry["path"] for pair in zip(full, cues) for entry in pair], pa.string())
        child = pa.StructArray.from_arrays([data, paths], names=["bytes", "path"])
    offsets = pa.py_buffer(np.arange(0, 2 * n + 1, 2, dtype=np.int32))
    return pa.Array.from_buffers(pa.list_(child.type), n, [None, offsets], children=[child])


def rows_table(rows: list[dict[str, Any]], image_mode: str) -> pa.Table:
    """One row group's table, in the writer's schema, from row dicts (the one path every written row group takes)."""
    import pyarrow as pa  # heavy: see the module docstring

    target = write_schema(image_mode)
    arrays = []
    for f in target:
        if f.name == IMAGES:
            full, cues = [r[IMAGES][0] for r in rows], [r[IMAGES][1] for r in rows]
            arrays.append(image_column(full, cues, image_mode, [r[IMAGE_ID] for r in rows]))
        else:
            arrays.append(column([r[f.name] for r in rows], f.type))
    return pa.Table.from_arrays(arrays, schema=target)
