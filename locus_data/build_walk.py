"""The walk over the source images: which image goes to which split with which cues, decoded in a pool.

**The walk.** Images are visited in seeded hash order (:mod:`locus_data.sampling`); each offers up to
``max_cues_per_image`` planned cues per size bin. Results are consumed strictly in walk order, and each image goes
to val if val still needs one of the bins it offers, else to train if train does, else it is not used; it then
gives as many of its cues (in plan order) as those bins still need. So each split and bin holds the *first N
successful candidates in plan order*, and val and train images are disjoint by construction. Decode failures
(missing, corrupt, size mismatch...) simply do not count, so the rows depend on the config, seed and files only,
never on ``--workers`` or timing (stats count skips only for images the walk needed, so they do not either).

**Parallelism.** The unit of work is one source image with all its cues, so each JPEG is decoded once. The main
process keeps a bounded window of images in flight (batches of ``TASK_BATCH`` via ``apply_async``, consumed in
order; near the end only as many as the cues still needed call for), and never sends an image, or cuts a cue, whose
bins are already full, which is safe because results only ever fill bins. Workers plan and cut the cues and return
cue bytes only; the main process reads unchanged source files itself, so full images never cross a process boundary.
Parquet writing runs in a writer thread (pyarrow releases the GIL), overlapping the next chunk's work; its first job,
given once the first results are back (the pool busy with the images in flight), opens the final files and imports
pyarrow.
"""

from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from locus_data.build_inputs import Sources
from locus_data.build_plan import FILL_ORDER
from locus_data.build_state import WalkState
from locus_data.coco_index import SourceImage
from locus_data.config import SIZE_BINS, DataConfig
from locus_data.crops import CueSpec
from locus_data.problems import CUE_SEARCH_PROBLEM
from locus_data.schema import (
    ANN_ID,
    ANSWER,
    AREA_RATIO,
    CATEGORY_ID,
    CROP_BOX,
    CUE_HEIGHT,
    CUE_SCALE,
    CUE_SOURCE,
    CUE_UPSAMPLED,
    CUE_WIDTH,
    FULL_REENCODED,
    IMAGE_ID,
    IMAGES,
    OBJ_BOX,
    PROBLEM,
    SIZE_BIN,
    SOURCE_FILE,
    SOURCE_HEIGHT,
    SOURCE_WIDTH,
    SPLIT,
    SourceFile,
)
from locus_data.worker import ImageResult, ImageTask, WorkerPool, process_source_image, worker_settings
from locus_reward.frames import rescale_box
from locus_reward.ground_truth import dumps


if TYPE_CHECKING:
    from tqdm import tqdm

    from locus_data.build_output import FinalWriters

TASK_BATCH = 8  # images per pool task: fewer round trips, still a fine-grained ordered stream
MAX_IN_FLIGHT_PER_WORKER = 64  # images; enough to keep workers busy through a chunk commit, results are small


class ChunkBuffer:
    """Rows of the chunk being filled, per split."""

    def __init__(self) -> None:
        self.clear()

    def add(self, split: str, row: dict[str, Any]) -> None:
        self.rows[split].append(row)

    def clear(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {s: [] for s in FILL_ORDER}


class Walk:
    """One pass of the image walk (see the module docstring), from ``state.next_pos`` until every bin is full.

    :meth:`run` repeats three steps: :meth:`send` keeps a bounded window of images in the pool, :meth:`receive`
    takes the oldest batch of results (walk order), and :meth:`consume` gives each result its split and cues;
    every ``chunk_images`` considered images, :meth:`commit` hands the chunk to the writer thread. The final files
    (``OUT/.build/{train,val}.parquet.tmp``) are open from the writer thread's first job to the end of :meth:`run`.
    """

    def __init__(
        self,
        cfg: DataConfig,
        sources: Sources,
        out: Path,
        order: list[SourceImage],
        state: WalkState,
        pool: WorkerPool | None,
        workers: int,
    ) -> None:
        self.cfg, self.sources, self.out, self.order, self.state = cfg, sources, out, order, state
        self.pool, self.workers = pool, workers
        self.finals: FinalWriters | None = None  # opened by the writer thread's first job
        self.quotas = {s: cfg.bin_counts(s) for s in FILL_ORDER}
        self.settings = worker_settings(cfg, out)
        self.wanted = tuple(b for b in SIZE_BINS if any(self.quotas[s][b] for s in FILL_ORDER))
        self.offers = {img.image_id: Counter(c.size_bin for c in img.candidates) for img in order}  # per bin
        self.buffer = ChunkBuffer()
        self.skipped, self.reencoded = Counter(state.skipped), Counter(state.reencoded)
        # batches in walk order: ((async result or None without a pool, tasks), number of images, cues offered per bin)
        self.pending: deque = deque()
        self.in_flight = 0
        self.flight_offers: Counter = Counter()  # cues the images in flight offer, per bin
        self.pos = state.next_pos  # next image to send
        self.considered_in_chunk = 0
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="locus-writer")
        self.writing: Future | None = None  # the writer's last job (opening the final files, then a chunk)

    def is_open(self, size_bin: str) -> bool:
        return any(self.state.counts[s][size_bin] < self.quotas[s][size_bin] for s in FILL_ORDER)

    def remaining(self) -> int:
        return sum(max(0, self.quotas[s][b] - self.state.counts[s][b]) for s in FILL_ORDER for b in SIZE_BINS)

    def run(self, progress: bool) -> None:
        """Walk until every bin is full (unless the resumed state says the walk was done) and write the rows."""
        try:
            if not self.state.walk_done:
                self.walk(progress)
            self.open_writer()
            self.writing.result()
        finally:
            self.writer.shutdown(wait=True)
            if self.finals is not None:
                self.finals.close()

    def open_writer(self) -> None:
        """Have the writer thread open the final files (once; before it writes any chunk).

        The walk calls this when the first results are back, not before: pyarrow, imported then, holds the GIL for
        ~0.15 s, which would keep the pool's task and result threads from handing the workers their first images.
        """
        if self.writing is None:
            # the chunks committed before an interruption: the walk adds to state.chunks while they are copied
            self.writing = self.writer.submit(self.open_finals, list(self.state.chunks))

    def open_finals(self, committed: list[dict[str, Any]]) -> None:
        """In the writer thread, first: open the final files and copy in the rows of the ``committed`` chunks.

        pyarrow is imported here, so the walk does not wait for it: the pool decodes images meanwhile.
        """
        from locus_data.build_output import FinalWriters, copy_committed_chunks  # heavy: pyarrow

        self.finals = FinalWriters(self.out, self.cfg)
        copy_committed_chunks(self.finals, committed, self.sources.images)

    def walk(self, progress: bool) -> None:
        more = self.send()  # the pool's first images, before anything else is loaded
        from tqdm import tqdm  # ~25 ms (it loads importlib.metadata): imported once the pool has its first images

        total = sum(sum(q.values()) for q in self.quotas.values())
        bar = tqdm(total=total, initial=sum(self.state.rows.values()), unit="ex", desc="build", disable=not progress)
        try:
            while more:
                results = self.receive()
                self.open_writer()  # the workers are busy with the images in flight by now
                for result in results:
                    self.consume(result, bar)
                if self.remaining() == 0:
                    break
                more = self.send()
            self.state.walk_done = True
            self.commit(self.pos)
            self.wait_in_flight()
        finally:
            bar.close()

    def send(self) -> bool:
        """Top up the images in flight; False when nothing is left to receive.

        Near the end no image is sent once the cues the images in flight offer would fill every open bin (each
        offers, per open bin, its planned cues there): little is decoded in vain once the bins fill, and should
        some of those images fail, the next call, made as their results come in, sends more. Cues of bins already
        full in both splits are never cut.
        """
        limit = MAX_IN_FLIGHT_PER_WORKER * max(self.workers, 1)
        need = self.uncovered()
        while self.in_flight < limit and self.pos < len(self.order) and any(n > 0 for n in need.values()):
            batch, offered = [], Counter()
            while len(batch) < TASK_BATCH and self.in_flight + len(batch) < limit and self.pos < len(self.order):
                if not any(n > 0 for n in need.values()):
                    break
                img = self.order[self.pos]
                self.pos += 1
                bins = tuple(b for b in self.wanted if self.is_open(b) and self.offers[img.image_id][b])
                if bins:
                    batch.append(ImageTask(self.pos - 1, str(self.sources.images / img.file_name), img, bins))
                    for b in bins:
                        offer = min(self.offers[img.image_id][b], self.cfg.max_cues_per_image)
                        offered[b] += offer
                        need[b] -= offer
            if batch:
                self.pending.append(((self.pool.submit(batch) if self.pool else None, batch), len(batch), offered))
                self.in_flight += len(batch)
                self.flight_offers += offered
        return bool(self.pending)

    def uncovered(self) -> dict[str, int]:
        """Per size bin: cues still needed (both splits) less those the images in flight offer."""
        counts, quotas = self.state.counts, self.quotas
        return {
            b: sum(max(0, quotas[s][b] - counts[s][b]) for s in FILL_ORDER) - self.flight_offers[b]
            for b in self.wanted
        }

    def receive(self) -> list[ImageResult]:
        """The oldest batch's results (decoded here when there is no pool)."""
        (item, tasks), count, offered = self.pending.popleft()
        self.in_flight -= count
        self.flight_offers -= offered
        if not self.pool:
            return [process_source_image(task, self.settings) for task in tasks]
        results = item.get()
        for result, task in zip(results, tasks):
            result.task = task  # the pool sends results back without their task
        return results

    def wait_in_flight(self) -> None:
        """Have the pool skip the images still in flight (their results are not needed) and wait until it is idle.

        So no worker is busy when :func:`locus_data.build.build` ends the pool (see :meth:`WorkerPool.close`); each
        finishes at most the image it is on.
        """
        if self.pool:
            self.pool.skip_rest()
        while self.pending:
            (item, _), count, offered = self.pending.popleft()
            self.in_flight -= count
            self.flight_offers -= offered
            if self.pool:
                item.get()

    def consume(self, result: ImageResult, bar: "tqdm") -> None:
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
        self.open_writer()  # before the chunk is recorded: the final files take the chunks committed earlier
        rows = self.buffer.rows
        seq = self.state.record_chunk(rows, next_pos, dict(self.skipped), dict(self.reencoded))
        self.writing.result()  # errors of the previous chunk (or of opening the final files) surface here
        self.writing = self.writer.submit(self.write_chunk, seq, rows, self.state.to_json())
        self.buffer.clear()
        self.considered_in_chunk = 0

    def write_chunk(self, seq: int, rows: dict[str, list[dict[str, Any]]], state_text: str) -> None:
        """In the writer thread: see :func:`locus_data.build_output.write_chunk`."""
        from locus_data.build_output import write_chunk  # loaded by open_finals, the writer's first job

        assert self.finals is not None
        write_chunk(self.out, self.cfg, seq, rows, self.state, state_text, self.finals)


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
                PROBLEM: CUE_SEARCH_PROBLEM,
                IMAGES: [full_image, cue_image],
                ANSWER: answer,
                SPLIT: split,
                IMAGE_ID: task.image_id,
                ANN_ID: -1 if random_crop else spec.ann_id,
                CATEGORY_ID: -1 if random_crop else spec.category_id,
                SIZE_BIN: spec.size_bin,
                CUE_SOURCE: cfg.cue_source,
                AREA_RATIO: spec.area_ratio,
                SOURCE_FILE: file_name,
                SOURCE_WIDTH: task.width,
                SOURCE_HEIGHT: task.height,
                OBJ_BOX: None if random_crop else list(spec.obj_box),
                CROP_BOX: [float(v) for v in spec.window],
                CUE_WIDTH: cue.width,
                CUE_HEIGHT: cue.height,
                CUE_SCALE: spec.scale,
                CUE_UPSAMPLED: cue.upsampled,
                FULL_REENCODED: result.reencoded,
                # not a column: lets a resume check that the source file it re-reads is the one used here
                "source_nbytes": result.source_nbytes if result.full_data is None else 0,
            },
        )
