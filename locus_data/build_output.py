"""The output folder: Parquet writers for chunk and final files, and the finishing step that puts the build in place.

**Storage.** Image bytes are dictionary-encoded per row group (:mod:`locus_data.schema`): rows of one image are
adjacent, so each full image is written about once. The row groups go into ``OUT/.build/{train,val}.parquet.tmp``
as chunks commit, and :func:`finish` renames them to ``OUT/{train,val}.parquet`` only once complete, so a file at a
final path is always whole.
"""

import os
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from locus_data.build_plan import FILL_ORDER
from locus_data.config import SPLITS, DataConfig, to_yaml
from locus_data.schema import hf_metadata, image_column, rows_table, write_schema
from locus_data.stats import write_stats


def row_groups(rows: list[dict[str, Any]], size: int, image_mode: str) -> list[tuple[pa.Table, pa.Table]]:
    """(final table, chunk table) per row group of ``size`` rows.

    The chunk table, kept only for resuming, leaves out the bytes of full images stored unchanged from their source
    file (a resume reads them from the source again), so committing a chunk writes little.
    """
    groups = [rows[i : i + size] for i in range(0, len(rows), size)] or [[]]
    result = []
    for group in groups:
        final = rows_table(group, image_mode)
        if image_mode != "bytes":
            result.append((final, final))
            continue
        stripped = [
            {"bytes": b"" if r["full_reencoded"] is None else r["images"][0]["bytes"], "path": r["images"][0]["path"]}
            for r in group
        ]
        images = image_column(stripped, [r["images"][1] for r in group], "bytes", [r["image_id"] for r in group])
        index = final.schema.get_field_index("images")
        result.append((final, final.set_column(index, final.schema.field(index), images)))
    return result


def parquet_writer(path: Path, image_mode: str) -> pq.ParquetWriter:
    """Writer for chunk and final files; see :mod:`locus_data.schema` for the encoding.

    No compression: JPEG/PNG bytes do not compress further and the metadata columns are tiny. The dictionary page
    limit is raised so the image dictionaries are never re-encoded as plain values.
    """
    return pq.ParquetWriter(
        path,
        write_schema(image_mode),
        compression="none",
        store_schema=False,
        dictionary_pagesize_limit=1 << 30,
        # min/max statistics over image bytes cost time and help no reader; keep them for filterable metadata
        write_statistics=["split", "image_id", "ann_id", "category_id", "size_bin", "cue_source", "area_ratio"],
    )


class FinalWriters:
    """``OUT/.build/{train,val}.parquet.tmp``, filled as chunks commit and renamed into place by :func:`finish`.

    A build that resumes first copies the committed chunks' row groups in (image bytes read back still
    dictionary-encoded, so this is about one sequential read and write); either way the final files end up with
    the same row groups as an uninterrupted build's.
    """

    def __init__(self, out: Path, cfg: DataConfig) -> None:
        self.out, self.cfg = out, cfg
        self.writers = {s: parquet_writer(out / ".build" / f"{s}.parquet.tmp", cfg.image_mode) for s in FILL_ORDER}

    def __enter__(self) -> "FinalWriters":
        return self

    def __exit__(self, *exc: object) -> None:
        for writer in self.writers.values():
            if self.cfg.hf_image_features:
                writer.add_key_value_metadata(hf_metadata(self.cfg.image_mode))
            writer.close()

    def write(self, split: str, table: pa.Table) -> None:
        if table.num_rows:
            self.writers[split].write_table(table, row_group_size=table.num_rows)


def finish(out: Path, cfg: DataConfig, build_info: dict[str, Any]) -> dict[str, Any]:
    """Put the complete final files in place, then write config.yaml and the stats and drop ``OUT/.build``."""
    work = out / ".build"
    for split in SPLITS:
        os.replace(work / f"{split}.parquet.tmp", out / f"{split}.parquet")
    header = f"# the data config this build used: locus-data build --config {out}/config.yaml ...\n"
    (out / "config.yaml").write_text(header + to_yaml(cfg))
    stats = write_stats(out, cfg, build_info)
    shutil.rmtree(work)
    return stats
