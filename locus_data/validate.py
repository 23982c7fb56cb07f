"""Check a built dataset before training starts on it (launchers run ``locus-data validate OUT`` as a preflight).

Every row: the EasyR1 columns and their types, exactly two ``<image>`` markers, exactly two images, an answer that
:func:`locus_reward.ground_truth.loads` accepts and whose width/height equal the stored full image's size, cue sizes
that both Qwen processors accept and that match ``cue_width``/``cue_height``, and a size bin whose area range holds
``area_ratio``. Image *headers* are read for every row (PIL's lazy open: sizes without decoding pixels, so 100K rows
take seconds plus the time to read the file); ``decode`` rows per split, spread evenly, are also fully decoded.
Decoded rows are also checked for a GT box that does not point at the cue's pixels (:mod:`locus_data.alignment`).
Across rows: train/val image ids are disjoint and, when ``OUT/config.yaml`` is there, the split sizes and bin counts
are exactly the configured ones.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image
from tqdm import tqdm

from locus_data.alignment import check_alignment
from locus_data.config import IMAGE_MODES, SIZE_BINS, SPLITS, DataConfig, load_config, split_path
from locus_data.crops import cue_problem
from locus_data.errors import UserError
from locus_data.images import open_image
from locus_data.problems import IMAGE_MARKER
from locus_data.rows import open_parquet, read_batches
from locus_data.schema import (
    ANN_ID,
    ANSWER,
    AREA_RATIO,
    CUE_HEIGHT,
    CUE_SOURCE,
    CUE_WIDTH,
    EASYR1_COLUMNS,
    IMAGE_ID,
    IMAGES,
    PROBLEM,
    SIZE_BIN,
    schema,
)
from locus_reward.ground_truth import loads


CHECKED_COLUMNS = (*EASYR1_COLUMNS, IMAGE_ID, ANN_ID, SIZE_BIN, CUE_SOURCE, AREA_RATIO)


def _accepted_types(name: str) -> tuple[pa.DataType, ...]:
    # the builder's types in either image mode; other writers (datasets, pandas) may store strings as large_string
    types = list(dict.fromkeys(schema(mode).field(name).type for mode in IMAGE_MODES))
    return (*types, pa.large_string()) if pa.string() in types else tuple(types)


REQUIRED_TYPES: dict[str, tuple[pa.DataType, ...]] = {name: _accepted_types(name) for name in CHECKED_COLUMNS}
SHOWN_PER_KIND = 5


@dataclass
class Report:
    problems: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    rows: dict[str, int] = field(default_factory=dict)
    decoded: int = 0

    def add(self, kind: str, where: str) -> None:
        self.problems[kind].append(where)

    @property
    def ok(self) -> bool:
        return not self.problems

    def open_split(self, path: Path, missing_hint: str = "") -> pq.ParquetFile | None:
        """The split file ``path`` opened, or None with the reason recorded (a folder, missing, unreadable);
        ``missing_hint`` follows "does not exist" (how to make the file)."""
        if path.is_dir():
            self.add("split file is a directory", f"{path} is a directory, expected a Parquet file")
            return None
        if not path.is_file():
            self.add("missing split file", f"{path} does not exist{missing_hint}")
            return None
        try:
            return open_parquet(path)
        except UserError as err:
            self.add("unreadable split file", str(err))
            return None

    def summary(self) -> str:
        checked = ", ".join(f"{split} {n} rows" for split, n in self.rows.items())
        if self.ok:
            return f"OK: {checked} checked ({self.decoded} images fully decoded)"
        total = sum(len(v) for v in self.problems.values())
        lines = [f"FAILED: {total} problems in {checked or 'the dataset'}"]
        for kind, wheres in self.problems.items():
            lines.append(f"  {kind}: {len(wheres)}")
            lines += [f"    {w}" for w in wheres[:SHOWN_PER_KIND]]
            if len(wheres) > SHOWN_PER_KIND:
                lines.append(f"    ... and {len(wheres) - SHOWN_PER_KIND} more")
        return "\n".join(lines)


def _open_image(entry: Any, decode: bool) -> Image.Image:
    image = open_image(entry)
    if decode:
        image.load()
    return image


def _check_row(
    row: dict[str, Any], where: str, cfg: DataConfig | None, decode: bool, report: Report, num_images: int
) -> None:
    problem = row.get(PROBLEM)
    if not isinstance(problem, str) or problem.count(IMAGE_MARKER) != num_images:
        count = problem.count(IMAGE_MARKER) if isinstance(problem, str) else "no"
        report.add(f"problem must hold exactly {num_images} <image> markers", f"{where}: {count} markers")
    images = row.get(IMAGES)
    if not isinstance(images, list) or len(images) != num_images:
        report.add(f"images must be a list of exactly {num_images}", f"{where}: {len(images) if images else 0} images")
        return
    try:
        gt = loads(row.get(ANSWER))
    except ValueError as err:
        report.add("answer does not parse", f"{where}: {err}")
        gt = None
    opened = []
    for i, name in enumerate(("full image", "cue")[:num_images]):
        try:
            opened.append(_open_image(images[i], decode))
        except Exception as err:  # any failure to open is the finding itself
            report.add(f"{name} cannot be opened", f"{where}: {type(err).__name__}: {err}")
            opened.append(None)
    full, cue = (opened + [None])[:2]  # a text-cue row has no cue image
    if full is not None and gt is not None and full.size != (gt.width, gt.height):
        report.add("answer width/height differ from the stored full image", f"{where}: {full.size} vs {gt[1:]}")
    elif decode and full is not None and cue is not None and gt is not None:
        # the builder cut the cue at the GT box: the decoded pixels there must be the cue (a moved box is not)
        alignment = check_alignment(full, cue, tuple(gt.box))
        if not alignment.ok:
            report.add("GT box does not match the cue's pixels", f"{where}: {alignment.describe()}")
    if cue is not None:
        min_side = cfg.min_cue_side if cfg else 32
        issue = cue_problem(cue.width, cue.height, cfg.max_cue_aspect if cfg else 200.0, min_side)
        if issue is not None:
            report.add("cue unsafe for Qwen2.5-VL/Qwen3-VL processors", f"{where}: {cue.width}x{cue.height}: {issue}")
        if CUE_WIDTH in row and (row[CUE_WIDTH], row[CUE_HEIGHT]) != cue.size:
            report.add("cue_width/cue_height differ from the stored cue", f"{where}: {cue.size}")
    size_bin = row.get(SIZE_BIN)
    if size_bin not in SIZE_BINS:
        report.add("unknown size_bin", f"{where}: {size_bin!r}")
    elif cfg is not None:
        lo, hi = cfg.bin_range(size_bin)
        if not lo <= row.get(AREA_RATIO, -1) < hi:
            report.add("area_ratio outside its size bin", f"{where}: {size_bin} {row.get(AREA_RATIO)}")


def validate(dataset: str | Path, decode: int = 64, progress: bool = True, num_images: int = 2) -> Report:
    """Check a built dataset; ``num_images`` is 2 for cue search (full image, cue) and 1 for the text-cue export."""
    out = Path(dataset)
    if not out.is_dir():
        raise UserError(f"{out} is not a directory")
    report = Report()
    if (out / ".build").exists():
        report.add("incomplete build", f"{out}/.build exists: the build was interrupted; finish it with --resume")
    cfg = None
    if (out / "config.yaml").is_file():
        try:
            cfg = load_config(out / "config.yaml")
        except UserError as err:
            report.add("config.yaml unreadable", str(err))
    image_ids: dict[str, set[int]] = {}
    bins: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        path = split_path(out, split)
        pf = report.open_split(path)
        if pf is None:
            continue
        arrow_schema = pf.schema_arrow
        missing = [c for c in REQUIRED_TYPES if c not in arrow_schema.names]
        wrong = [
            f"{c}: {arrow_schema.field(c).type}"
            for c in REQUIRED_TYPES
            if c in arrow_schema.names and arrow_schema.field(c).type not in REQUIRED_TYPES[c]
        ]
        if missing or wrong:
            report.add("columns", f"{path}: missing {missing}, wrong types {wrong}")
            continue
        n = pf.metadata.num_rows
        report.rows[split] = n
        configured = None if cfg is None else cfg.split_size(split)
        if n == 0 and configured != 0:  # zero rows is only right when the build config asked for none
            wanted = f" (config.yaml asks for {configured})" if configured else ""
            report.add("empty split", f"{path} has no rows{wanted}; rebuild the dataset")
        decode_every = 1 if decode < 0 or decode >= n else max(1, n // max(decode, 1)) if decode else 0
        ids: set[int] = set()
        counts: dict[str, int] = defaultdict(int)
        index = 0
        bar = tqdm(total=n, desc=f"validate {split}", unit="row", disable=not progress)
        try:
            for batch in read_batches(path):  # one batch at a time keeps memory at one batch's images
                for row in batch.to_pylist():
                    full_decode = bool(decode_every) and index % decode_every == 0
                    report.decoded += 2 * full_decode
                    _check_row(row, f"{split} row {index}", cfg, full_decode, report, num_images)
                    ids.add(row[IMAGE_ID])
                    counts[row[SIZE_BIN]] += 1
                    index += 1
                bar.update(batch.num_rows)
        except UserError as err:  # pages that do not read behind a footer that does
            report.add("unreadable split file", str(err))
        bar.close()
        image_ids[split], bins[split] = ids, dict(counts)
    train, val = SPLITS
    if train in image_ids and val in image_ids:
        shared = image_ids[train] & image_ids[val]
        if shared:
            report.add("train and val share images", f"{len(shared)} image ids, e.g. {sorted(shared)[:5]}")
    if cfg is not None:
        for split, counts in bins.items():
            expected = {b: n for b, n in cfg.bin_counts(split).items() if n}
            if counts != expected and not cfg.allow_shortfall:
                report.add("bin counts differ from the config", f"{split}: {counts}, configured {expected}")
    return report
