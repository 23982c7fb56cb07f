"""Build train/val.parquet: plan from annotations, decode in a pool, write in committed chunks, finalize atomically.

**The walk.** Images are visited in seeded hash order (:mod:`locus_data.sampling`); each offers up to
``max_cues_per_image`` planned cues per size bin. Results are consumed strictly in walk order, and each image goes
to val if val still needs one of the bins it offers, else to train if train does, else it is not used; it then
gives as many of its cues (in plan order) as those bins still need. So each split and bin holds the *first N
successful candidates in plan order*, and val and train images are disjoint by construction. Decode failures
(missing, corrupt, size mismatch...) simply do not count, so the rows depend on the config, seed and files only,
never on ``--workers`` or timing (stats count skips only for images the walk needed, so they do not either).

**Parallelism.** The unit of work is one source image with all its cues, so each JPEG is decoded once. The main
process keeps a bounded window of images in flight (batches of ``TASK_BATCH`` via ``apply_async``, consumed in
order; near the end never more than the cues still needed), and never sends an image, or cuts a cue, whose bins are
already full, which is safe because results only ever fill bins. Workers plan and cut the cues and return cue bytes
only; the main process reads unchanged source files itself, so full images never cross a process boundary. Parquet
writing runs in a writer thread (pyarrow releases the GIL), overlapping the next chunk's work.

**Storage.** Image bytes are dictionary-encoded per row group (:mod:`locus_data.schema`): rows of one image are
adjacent, so each full image is written about once.

**Resume.** Every ``chunk_images`` considered images, the rows are written to ``OUT/.build/chunks/`` (tmp file, then
rename; full-image bytes of unchanged source files are left out, as they can be read again) and then
``OUT/.build/state.json`` (tmp, then rename) records the walk position, counts and source file sizes. The same row
groups go into ``OUT/.build/{train,val}.parquet.tmp``, which are renamed to ``OUT/{train,val}.parquet`` only once
complete, so a file at a final path is always whole. A killed build restarts from the last state with ``--resume``
(refused if the config, annotation file or image folder differ, or a source file changed size); uncommitted files
are deleted and the committed chunks are copied into fresh final files first, so the result is byte-identical to an
uninterrupted build. Safe against a killed process; against power loss only as far as the filesystem orders renames
after data.
"""

import hashlib
import json
import multiprocessing
import os
import shutil
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from locus_data.coco_index import SourceImage, build_index
from locus_data.config import SIZE_BINS, SPLITS, DataConfig, load_config, to_dict, to_yaml
from locus_data.crops import CueSpec
from locus_data.errors import UserError
from locus_data.problems import CUE_SEARCH_PROBLEM
from locus_data.sampling import image_order
from locus_data.schema import SourceFile, hf_metadata, image_column, rows_table, write_schema
from locus_data.stats import write_stats
from locus_data.worker import ImageResult, ImageTask, WorkerSettings, init_worker, process_source_image, run_tasks
from locus_reward.frames import rescale_box
from locus_reward.ground_truth import dumps


FILL_ORDER = tuple(reversed(SPLITS))  # val first: it takes its images from the front of the walk
STATE_VERSION = 1
# keys that change neither the rows nor the chunk files, so a resume may change them
RESUME_FREE_KEYS = ("allow_shortfall", "hf_image_features")
TASK_BATCH = 8  # images per pool task: fewer round trips, still a fine-grained ordered stream
MAX_IN_FLIGHT_PER_WORKER = 64  # images; enough to keep workers busy through a chunk commit, results are small


@dataclass
class Sources:
    annotations: Path
    images: Path

    @classmethod
    def from_args(cls, coco_root: str | None, annotations: str | None, images: str | None) -> "Sources":
        """Resolve ``--coco-root`` or ``--annotations`` + ``--images``; raises UserError naming what is missing."""
        if coco_root is not None:
            if annotations or images:
                raise UserError("give either --coco-root or --annotations with --images, not both")
            root = Path(coco_root)
            if not root.is_dir():
                raise UserError(f"--coco-root {root} is not a directory")
            ann, img = root / "annotations" / "instances_train2014.json", root / "train2014"
            if not ann.is_file():
                raise UserError(f"--coco-root {root} has no annotations/instances_train2014.json")
            if not img.is_dir():
                raise UserError(f"--coco-root {root} has no train2014/ image folder")
            return cls(ann, img)
        if not annotations or not images:
            raise UserError("give --coco-root, or both --annotations FILE and --images DIR")
        if not Path(annotations).is_file():
            raise UserError(f"--annotations {annotations} is not a file")
        if not Path(images).is_dir():
            raise UserError(f"--images {images} is not a directory")
        return cls(Path(annotations), Path(images))


@dataclass
class WalkState:
    """Everything needed to continue the walk; saved with each committed chunk."""

    fingerprint: dict[str, Any]
    next_pos: int = 0
    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: {s: dict.fromkeys(SIZE_BINS, 0) for s in FILL_ORDER}
    )
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FILL_ORDER, 0))
    images_used: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FILL_ORDER, 0))
    images_considered: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    reencoded: dict[str, int] = field(default_factory=dict)
    chunks: list[dict[str, Any]] = field(default_factory=list)
    walk_done: bool = False

    def to_json(self) -> str:
        return json.dumps({"version": STATE_VERSION, **self.__dict__}, indent=1)

    def save(self, path: Path, text: str | None = None) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.to_json() if text is None else text)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> "WalkState":
        data = json.loads(path.read_text())
        if data.pop("version", None) != STATE_VERSION:
            raise UserError(f"{path} was written by another locus-data version; remove {path.parent} and rebuild")
        return cls(**data)


class ChunkBuffer:
    """Rows of the chunk being filled, per split."""

    def __init__(self) -> None:
        self.clear()

    def add(self, split: str, row: dict[str, Any]) -> None:
        self.rows[split].append(row)

    def clear(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {s: [] for s in FILL_ORDER}


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


def fingerprint(cfg: DataConfig, sources: Sources) -> dict[str, Any]:
    h = hashlib.blake2b(digest_size=16)
    with open(sources.annotations, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    config = {k: v for k, v in to_dict(cfg).items() if k not in RESUME_FREE_KEYS}
    return {
        "config": config,
        "annotations": str(sources.annotations.resolve()),
        "annotations_blake2b": h.hexdigest(),
        "images": str(sources.images.resolve()),
    }


def _fingerprint_difference(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    diffs = [f"{k}: {old['config'].get(k)!r} -> {v!r}" for k, v in new["config"].items() if old["config"].get(k) != v]
    diffs += [f"{k} differs" for k in ("annotations", "annotations_blake2b", "images") if old.get(k) != new.get(k)]
    return diffs


def build(
    cfg: DataConfig, sources: Sources, out: str | Path, workers: int = 1, resume: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Build the dataset into ``out``; returns the stats dict (also written to ``out/stats.json``)."""
    out = Path(out)
    work = out / ".build"
    finals = [out / f"{s}.parquet" for s in SPLITS]
    # checked before anything is read or started, so a wrong --out fails at once
    if workers < 0:
        raise UserError(f"--workers must be >= 0 (0 decodes in the main process), got {workers}")
    if out.resolve().is_relative_to(sources.images.resolve()):
        # the build would write cues and parquet files among the source images it walks
        raise UserError(f"--out {out} is inside the source image folder {sources.images}; choose a folder outside it")
    if not work.exists() and any(p.exists() for p in finals):
        if resume:
            _check_finished_build_matches(cfg, out)
            print(f"{out} already holds a finished build; nothing to resume")
            return json.loads((out / "stats.json").read_text()) if (out / "stats.json").is_file() else {}
        raise UserError(f"{out} already holds a build; remove it or choose another --out")
    if work.exists() and not resume:
        raise UserError(f"{out} holds an interrupted build; pass --resume to continue it, or remove {out}")

    started = time.time()
    print_ = print if progress else (lambda *a, **k: None)
    # spawn (workers start lean instead of inheriting the parsed annotation file), and start now, so the workers'
    # interpreter start-up overlaps with reading the annotations
    pool = None
    if workers > 0:
        context = multiprocessing.get_context("spawn")
        pool = context.Pool(workers, initializer=init_worker, initargs=(worker_settings(cfg, out),))
    try:
        print_(f"reading {sources.annotations}")
        index = build_index(sources.annotations, cfg)
        order = image_order(index.images, cfg.seed)
        _check_capacity(cfg, order)
        state = _start_or_resume(cfg, sources, out, resume, len(order), print_)
        with FinalWriters(out, cfg) as finals:
            finals.copy_chunks(state, sources.images)  # rows committed before an interruption
            if not state.walk_done:
                Walk(cfg, sources, out, order, state, pool, workers, finals).run(progress)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    shortfall = _shortfall(cfg, state)
    if shortfall and not cfg.allow_shortfall:
        skipped = ", ".join(f"{reason}: {n}" for reason, n in sorted(state.skipped.items()))
        if state.images_considered and state.skipped.get("missing_file", 0) == state.images_considered:
            # not a data mix problem: the annotations name files the image folder does not have
            raise UserError(
                f"all {state.images_considered} images the build tried are missing from {sources.images} "
                f"({skipped}); "
                "is it the right image folder (COCO: --coco-root holding train2014/)?"
            )
        raise UserError(
            f"not enough usable candidates after walking all {len(order)} images: {'; '.join(shortfall)}"
            f"{f' (images skipped: {skipped})' if skipped else ''}. "
            "Lower num_train/num_val, raise max_cues_per_image, add images, or set allow_shortfall=true "
            "(then --resume reuses the work done)"
        )
    for split in SPLITS:
        os.replace(work / f"{split}.parquet.tmp", out / f"{split}.parquet")
    build_info = {
        "annotations": str(sources.annotations),
        "images": str(sources.images),
        "workers": workers,
        "seconds": round(time.time() - started, 2),
        "source_images": index.num_images,
        "source_annotations": index.num_annotations,
        "images_with_candidates": len(order),
        "images_considered": state.images_considered,
        "images_used": state.images_used,
        "skipped_annotations": dict(sorted(index.skipped.items())),
        "skipped_in_walk": dict(sorted(state.skipped.items())),
        "reencoded_full_images": dict(sorted(state.reencoded.items())),
        "shortfall": shortfall,
    }
    header = f"# the data config this build used: locus-data build --config {out}/config.yaml ...\n"
    (out / "config.yaml").write_text(header + to_yaml(cfg))
    stats = write_stats(out, cfg, build_info)
    shutil.rmtree(work)
    return stats


def _check_finished_build_matches(cfg: DataConfig, out: Path) -> None:
    """``--resume`` on a finished build is a no-op only if the config is the one it was built with."""
    if not (out / "config.yaml").is_file():
        return  # built before config.yaml was written: nothing to compare with
    old, new = to_dict(load_config(out / "config.yaml")), to_dict(cfg)
    diffs = [f"{k}: {old.get(k)!r} -> {v!r}" for k, v in new.items() if k not in RESUME_FREE_KEYS and old.get(k) != v]
    if diffs:
        raise UserError(
            f"--resume: {out} holds a finished build made with other settings ({'; '.join(diffs)}); "
            "remove it or choose another --out to build with these"
        )


def _start_or_resume(
    cfg: DataConfig, sources: Sources, out: Path, resume: bool, num_images: int, print_: Any
) -> WalkState:
    work = out / ".build"
    fp = fingerprint(cfg, sources)
    state_path = work / "state.json"
    if resume and state_path.is_file():
        state = WalkState.load(state_path)
        diffs = _fingerprint_difference(state.fingerprint, fp)
        if diffs:
            raise UserError(f"--resume: {out} was started with other inputs ({'; '.join(diffs)}); use another --out")
        _drop_uncommitted(work, state)
        print_(f"resuming at image {state.next_pos} of {num_images} with {sum(state.rows.values())} rows committed")
    else:
        (work / "chunks").mkdir(parents=True, exist_ok=True)
        state = WalkState(fp)
        state.save(state_path)
    if cfg.image_mode == "paths":
        for sub in ("cues", "full"):
            (out / sub).mkdir(parents=True, exist_ok=True)
    return state


def _check_capacity(cfg: DataConfig, images: list[SourceImage]) -> None:
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


def _shortfall(cfg: DataConfig, state: WalkState) -> list[str]:
    return [
        f"{split} {b} {state.counts[split][b]}/{n}"
        for split in FILL_ORDER
        for b, n in cfg.bin_counts(split).items()
        if state.counts[split][b] < n
    ]


def _drop_uncommitted(work: Path, state: WalkState) -> None:
    committed = {name for chunk in state.chunks for name in chunk["files"].values()}
    for path in (work / "chunks").iterdir():
        if path.name not in committed:
            path.unlink()
    for chunk in state.chunks:
        for split, name in chunk["files"].items():
            path = work / "chunks" / name
            try:
                rows = pq.ParquetFile(path).metadata.num_rows
            except Exception:
                rows = -1
            if rows != chunk["rows"][split]:
                raise UserError(f"committed chunk {path} is damaged; remove {work.parent} and rebuild")


def worker_settings(cfg: DataConfig, out: Path) -> WorkerSettings:
    paths = cfg.image_mode == "paths"
    return WorkerSettings(
        cfg, cue_dir=str(out / "cues") if paths else None, full_dir=str(out / "full") if paths else None
    )


class Walk:
    """One pass of the image walk (see the module docstring), from ``state.next_pos`` until every bin is full.

    :meth:`run` repeats three steps: :meth:`send` keeps a bounded window of images in the pool, :meth:`receive`
    takes the oldest batch of results (walk order), and :meth:`consume` gives each result its split and cues;
    every ``chunk_images`` considered images, :meth:`commit` hands the chunk to the writer thread.
    """

    def __init__(
        self,
        cfg: DataConfig,
        sources: Sources,
        out: Path,
        order: list[SourceImage],
        state: WalkState,
        pool: Any,
        workers: int,
        finals: "FinalWriters",
    ) -> None:
        self.cfg, self.sources, self.out, self.order, self.state = cfg, sources, out, order, state
        self.pool, self.workers, self.finals = pool, workers, finals
        self.quotas = {s: cfg.bin_counts(s) for s in FILL_ORDER}
        self.settings = worker_settings(cfg, out)
        self.wanted = tuple(b for b in SIZE_BINS if any(self.quotas[s][b] for s in FILL_ORDER))
        self.offers = {img.image_id: {c.size_bin for c in img.candidates} for img in order}
        self.buffer = ChunkBuffer()
        self.skipped, self.reencoded = Counter(state.skipped), Counter(state.reencoded)
        self.pending: deque = deque()  # batches of tasks in walk order: (async result or task list, number of images)
        self.in_flight = 0
        self.pos = state.next_pos  # next image to send
        self.considered_in_chunk = 0
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="locus-writer")
        self.writing: Future | None = None  # the chunk being written; one at a time bounds memory

    def is_open(self, size_bin: str) -> bool:
        return any(self.state.counts[s][size_bin] < self.quotas[s][size_bin] for s in FILL_ORDER)

    def remaining(self) -> int:
        return sum(max(0, self.quotas[s][b] - self.state.counts[s][b]) for s in FILL_ORDER for b in SIZE_BINS)

    def run(self, progress: bool) -> None:
        total = sum(sum(q.values()) for q in self.quotas.values())
        bar = tqdm(total=total, initial=sum(self.state.rows.values()), unit="ex", desc="build", disable=not progress)
        try:
            while self.send():
                for result in self.receive():
                    self.consume(result, bar)
                if self.remaining() == 0:
                    break
            self.state.walk_done = True
            self.commit(self.pos)
            self.writing.result()
        finally:
            self.writer.shutdown(wait=True)
            bar.close()

    def send(self) -> bool:
        """Top up the images in flight; False when nothing is left to receive.

        Near the end never more images are in flight than cues still needed (each offers at least one), so little
        is decoded in vain once the bins fill; cues of bins already full in both splits are never cut.
        """
        limit = min(MAX_IN_FLIGHT_PER_WORKER * max(self.workers, 1), max(self.workers, self.remaining()))
        while self.in_flight < limit and self.pos < len(self.order):
            batch = []
            while len(batch) < TASK_BATCH and self.in_flight + len(batch) < limit and self.pos < len(self.order):
                img = self.order[self.pos]
                self.pos += 1
                bins = tuple(b for b in self.wanted if self.is_open(b) and b in self.offers[img.image_id])
                if bins:
                    batch.append(ImageTask(self.pos - 1, str(self.sources.images / img.file_name), img, bins))
            if batch:
                self.pending.append((self.pool.apply_async(run_tasks, (batch,)) if self.pool else batch, len(batch)))
                self.in_flight += len(batch)
        return bool(self.pending)

    def receive(self) -> list[ImageResult]:
        """The oldest batch's results (decoded here when there is no pool)."""
        item, count = self.pending.popleft()
        self.in_flight -= count
        return item.get() if self.pool else [process_source_image(task, self.settings) for task in item]

    def consume(self, result: ImageResult, bar: tqdm) -> None:
        """Give one image its split and cues (or none), then commit a chunk when it is due."""
        if not any(self.is_open(c.size_bin) for c in result.specs):
            return  # prefetched, but earlier images filled its bins
        self.state.images_considered += 1
        self.considered_in_chunk += 1
        taken = self.take(result)
        if taken:
            split, cues = taken
            if result.reencoded:
                self.reencoded[result.reencoded.split(":")[0]] += 1
            _emit_rows(result, split, cues, self.cfg, self.out, self.buffer)
            self.state.images_used[split] += 1
            self.state.rows[split] += len(cues)
            bar.update(len(cues))
        if self.considered_in_chunk >= self.cfg.chunk_images:
            self.commit(result.task.pos + 1)

    def take(self, result: ImageResult) -> tuple[str, list] | None:
        """Split and cues this image contributes (counts updated), or None; see the module docstring."""
        counts, quotas = self.state.counts, self.quotas
        if result.skip is not None:
            self.skipped[result.skip] += 1
            return None
        good = []
        for cue in result.cues:
            if cue.skip is None:
                good.append(cue)
            elif self.is_open(cue.spec.size_bin):
                self.skipped[cue.skip] += 1  # counted only where it mattered, so counts do not depend on timing
        offered = {cue.spec.size_bin for cue in good}
        for split in FILL_ORDER:
            if any(counts[split][b] < quotas[split][b] for b in offered):
                taken = []
                for cue in good:
                    if counts[split][cue.spec.size_bin] < quotas[split][cue.spec.size_bin]:
                        counts[split][cue.spec.size_bin] += 1
                        taken.append(cue)
                return split, taken
        return None

    def commit(self, next_pos: int) -> None:
        """Record the chunk in the state and hand its rows to the writer thread (after the previous chunk)."""
        state, rows = self.state, self.buffer.rows
        seq = len(state.chunks)
        files = {split: f"{seq:06d}-{split}.parquet" for split in FILL_ORDER}
        counts = {split: len(rows[split]) for split in FILL_ORDER}
        sizes = {r["image_id"]: r["source_nbytes"] for s in FILL_ORDER for r in rows[s] if r["source_nbytes"]}
        state.chunks.append({"files": files, "rows": counts, "source_nbytes": {str(k): v for k, v in sizes.items()}})
        state.next_pos = next_pos
        state.skipped, state.reencoded = dict(self.skipped), dict(self.reencoded)
        if self.writing is not None:
            self.writing.result()  # errors of the previous chunk surface here
        self.writing = self.writer.submit(self.write_chunk, seq, rows, state.to_json())
        self.buffer.clear()
        self.considered_in_chunk = 0

    def write_chunk(self, seq: int, chunk_rows: dict[str, list[dict[str, Any]]], state_text: str) -> None:
        """In the writer thread (file reads and pyarrow writes release the GIL): chunk files, then the state naming
        them, then the same row groups straight into the final files, so they are never read back from the chunks."""
        cfg = self.cfg
        tables = {split: row_groups(chunk_rows[split], cfg.row_group_size, cfg.image_mode) for split in FILL_ORDER}
        for split in FILL_ORDER:
            name = f"{seq:06d}-{split}.parquet"
            tmp = self.out / ".build" / "chunks" / f".{name}.tmp"
            with parquet_writer(tmp, cfg.image_mode) as writer:
                for _, chunk_table in tables[split]:
                    writer.write_table(chunk_table, row_group_size=len(chunk_table) or 1)
            os.replace(tmp, tmp.with_name(name))
        self.state.save(self.out / ".build" / "state.json", state_text)
        for split in FILL_ORDER:
            for final_table, _ in tables[split]:
                self.finals.write(split, final_table)


def _emit_rows(
    result: ImageResult,
    split: str,
    cues: list,
    cfg: DataConfig,
    out: Path,
    buffer: ChunkBuffer,
) -> None:
    task = result.task
    file_name = task.image.file_name
    if cfg.image_mode == "bytes":
        # an unchanged source file is read by the writer, straight into the row group (see schema.SourceFile)
        full = result.full_data if result.full_data is not None else SourceFile(task.path, result.source_nbytes)
        full_image: Any = {"bytes": full, "path": file_name}
    else:
        full_image = result.full_path or str(Path(task.path).resolve())
    stored_w, stored_h = result.full_size
    for cue in cues:
        spec: CueSpec = cue.spec
        # the ground truth lives in the stored full image's frame (downsampled for the information-gap variant)
        answer = dumps(rescale_box(spec.window, task.width, task.height, stored_w, stored_h), stored_w, stored_h)
        if cfg.image_mode == "bytes":
            cue_image: Any = {"bytes": cue.data, "path": spec.cue_name}
        else:
            cue_image = str((out / "cues" / spec.cue_name).resolve())
        random_crop = cfg.cue_source == "random"
        buffer.add(
            split,
            {
                "problem": CUE_SEARCH_PROBLEM,
                "images": [full_image, cue_image],
                "answer": answer,
                "split": split,
                "image_id": task.image_id,
                "ann_id": -1 if random_crop else spec.ann_id,
                "category_id": -1 if random_crop else spec.category_id,
                "size_bin": spec.size_bin,
                "cue_source": cfg.cue_source,
                "area_ratio": spec.area_ratio,
                "source_file": file_name,
                "source_width": task.width,
                "source_height": task.height,
                "obj_box": None if random_crop else list(spec.obj_box),
                "crop_box": [float(v) for v in spec.window],
                "cue_width": cue.width,
                "cue_height": cue.height,
                "cue_scale": spec.scale,
                "cue_upsampled": cue.upsampled,
                "full_reencoded": result.reencoded,
                # not a column: lets a resume check that the source file it re-reads is the one used here
                "source_nbytes": result.source_nbytes if result.full_data is None else 0,
            },
        )


class FinalWriters:
    """``OUT/.build/{train,val}.parquet.tmp``, filled as chunks commit and renamed into place by :func:`build`.

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

    def copy_chunks(self, state: WalkState, images: Path) -> None:
        for chunk in state.chunks:
            sizes = chunk.get("source_nbytes", {})
            for split in FILL_ORDER:
                part = pq.ParquetFile(self.out / ".build" / "chunks" / chunk["files"][split])
                for group in range(part.num_row_groups):
                    rows = part.read_row_group(group).to_pylist()
                    if self.cfg.image_mode == "bytes":
                        _restore_source_bytes(rows, images, sizes)
                    self.write(split, rows_table(rows, self.cfg.image_mode))


def _restore_source_bytes(rows: list[dict[str, Any]], images: Path, sizes: dict[str, int]) -> None:
    """Put back the full-image bytes a chunk left out (unchanged source files)."""
    for row in rows:
        if row["full_reencoded"] is None:
            size = sizes.get(str(row["image_id"]))
            if size is None:
                raise UserError("--resume: a committed chunk lacks source sizes; remove the output and rebuild")
            # read (and its size checked) when the row group is built, see schema.SourceFile
            row["images"][0]["bytes"] = SourceFile(str(images / row["source_file"]), size)
