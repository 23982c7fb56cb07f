"""The output folder: Parquet writers for chunk and final files, and the finishing step that puts the build in place.

The walk's writer thread imports this module (and so pyarrow) when it opens the final files, while the pool
decodes the images in flight: :mod:`locus_data.build` and the walk itself never wait for it.

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
from locus_data.build_state import WalkState, chunk_file_name
from locus_data.config import SPLITS, DataConfig, split_path, to_yaml
from locus_data.errors import UserError
from locus_data.schema import STATISTICS_COLUMNS, SourceFile, hf_metadata, image_column, rows_table, write_schema
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
        write_statistics=STATISTICS_COLUMNS,
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
        self.closed = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for writer in self.writers.values():
            if self.cfg.hf_image_features:
                writer.add_key_value_metadata(hf_metadata(self.cfg.image_mode))
            writer.close()

    def write(self, split: str, table: pa.Table) -> None:
        if table.num_rows:
            self.writers[split].write_table(table, row_group_size=table.num_rows)


def write_chunk(
    out: Path,
    cfg: DataConfig,
    seq: int,
    chunk_rows: dict[str, list[dict[str, Any]]],
    state: WalkState,
    state_text: str,
    finals: FinalWriters,
) -> None:
    """Commit chunk ``seq``: chunk files, then the state naming them, then the same row groups straight into the
    final files, so they are never read back from the chunks."""
    tables = {split: row_groups(chunk_rows[split], cfg.row_group_size, cfg.image_mode) for split in FILL_ORDER}
    for split in FILL_ORDER:
        name = chunk_file_name(seq, split)
        tmp = out / ".build" / "chunks" / f".{name}.tmp"
        with parquet_writer(tmp, cfg.image_mode) as writer:
            for _, chunk_table in tables[split]:
                writer.write_table(chunk_table, row_group_size=len(chunk_table) or 1)
        os.replace(tmp, tmp.with_name(name))
    state.save(out / ".build" / "state.json", state_text)
    for split in FILL_ORDER:
        for final_table, _ in tables[split]:
            finals.write(split, final_table)


def copy_committed_chunks(finals: FinalWriters, chunks: list[dict[str, Any]], images: Path) -> None:
    """Rows of ``chunks`` (:attr:`WalkState.chunks` committed before an interruption) into fresh final files (see
    :class:`FinalWriters`)."""
    cfg = finals.cfg
    for chunk in chunks:
        sizes = chunk.get("source_nbytes", {})
        for split in FILL_ORDER:
            part = pq.ParquetFile(finals.out / ".build" / "chunks" / chunk["files"][split])
            for group in range(part.num_row_groups):
                rows = part.read_row_group(group).to_pylist()
                if cfg.image_mode == "bytes":
                    _restore_source_bytes(rows, images, sizes)
                finals.write(split, rows_table(rows, cfg.image_mode))


def _restore_source_bytes(rows: list[dict[str, Any]], images: Path, sizes: dict[str, int]) -> None:
    """Put back the full-image bytes a chunk left out (unchanged source files)."""
    for row in rows:
        if row["full_reencoded"] is None:
            size = sizes.get(str(row["image_id"]))
            if size is None:
                raise UserError("--resume: a committed chunk lacks source sizes; remove the output and rebuild")
            # read (and its size checked) when the row group is built, see schema.SourceFile
            row["images"][0]["bytes"] = SourceFile(str(images / row["source_file"]), size)


def finish(out: Path, cfg: DataConfig, build_info: dict[str, Any]) -> dict[str, Any]:
    """Put the complete final files in place, then write config.yaml and the stats and drop ``OUT/.build``."""
    work = out / ".build"
    for split in SPLITS:
        os.replace(work / f"{split_path(out, split).name}.tmp", split_path(out, split))
    header = f"# the data config this build used: locus-data build --config {out}/config.yaml ...\n"
    (out / "config.yaml").write_text(header + to_yaml(cfg))
    stats = write_stats(out, cfg, build_info)
    shutil.rmtree(work)
    return stats
