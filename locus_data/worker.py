"""The per-image work done in pool processes: read one source file, check it, decode it once, plan and cut its cues.

What comes back is small: cue bytes and metadata. When the stored full image is the source file unchanged (an RGB
JPEG or PNG without an EXIF rotation, and no downsampling), its bytes are *not* returned: the writer reads the file
itself, so full images never cross a process boundary. Other sources are re-encoded once here, as JPEG at
``jpeg_quality``: non-RGB modes (grayscale, CMYK, palette, RGBA...) converted to RGB; files carrying an EXIF
orientation (stored pixels kept as they are, since COCO boxes refer to stored pixels, and the tag is dropped so no
reader rotates them); the information-gap variant's downsampled full image (Lanczos).

Bad input never raises: a missing file, an undecodable or truncated one, or one whose decoded size differs from the
annotation's width/height (its boxes would not line up) comes back as a skip reason.

**The pool.** :class:`WorkerPool` forks the workers where that is safe (this process runs no other thread), else
spawns them, and each worker ends itself once the build process is gone (:func:`init_worker`).
"""

import multiprocessing
import multiprocessing.pool
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from locus_data.coco_index import SourceImage
from locus_data.config import DataConfig
from locus_data.crops import CueSpec, cue_problem, cue_size, downsampled_size, encode, render_cue
from locus_data.images import ImageTooLarge, open_image
from locus_data.outputs import atomic_write_bytes
from locus_data.sampling import plan_cues


EXIF_ORIENTATION = 0x0112
KEEP_FORMATS = ("JPEG", "PNG")


@dataclass(frozen=True)
class ImageTask:
    pos: int
    """position in the image walk"""
    path: str
    image: SourceImage
    bins: tuple[str, ...]
    """size bins still open when the task was sent: cues of other bins could never be taken, so are not cut"""

    @property
    def image_id(self) -> int:
        return self.image.image_id

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height


@dataclass(frozen=True)
class WorkerSettings:
    """What every pool worker needs, sent once when the pool starts."""

    cfg: DataConfig
    """the build config: plans the cues (done here to keep the writer process free), cue and encoding limits"""
    cue_dir: str | None
    """paths mode: write cue files here instead of returning their bytes"""
    full_dir: str | None
    """paths mode: write re-encoded full images here"""


@dataclass
class CueResult:
    spec: CueSpec
    data: bytes | None
    """encoded cue, or None in paths mode (written to ``cue_dir``) or when skipped"""
    width: int = 0
    height: int = 0
    upsampled: bool = False
    skip: str | None = None


@dataclass
class ImageResult:
    task: ImageTask
    specs: tuple[CueSpec, ...] = ()
    """the planned cues of the task's open bins"""
    skip: str | None = None
    """reason the whole image is unusable, or None"""
    detail: str = ""
    full_data: bytes | None = None
    """re-encoded full image; None: store the source file's bytes unchanged"""
    full_path: str | None = None
    """paths mode: where the re-encoded full image was written"""
    full_size: tuple[int, int] = (0, 0)
    source_nbytes: int = 0
    reencoded: str | None = None
    """why the full image was re-encoded (non_rgb:<mode>, exif_orientation, not_jpeg:<format>, downsampled)"""
    cues: list[CueResult] = field(default_factory=list)


def worker_settings(cfg: DataConfig, out: Path) -> WorkerSettings:
    """The settings of a build into ``out`` (paths mode writes cues and re-encoded full images under it)."""
    paths = cfg.image_mode == "paths"
    return WorkerSettings(
        cfg, cue_dir=str(out / "cues") if paths else None, full_dir=str(out / "full") if paths else None
    )


class WorkerPool:
    """The build's worker processes: each batch of :class:`ImageTask` submitted comes back as one ``AsyncResult``."""

    def __init__(self, settings: WorkerSettings, workers: int) -> None:
        """Start ``workers`` processes, children of the calling thread, which must outlive the pool.

        Forked when this process runs a single thread, native threads of libraries included: then no lock can be
        held by another thread at the fork, and the workers start at once with the modules already loaded instead
        of each starting an interpreter (``locus-data build`` starts its pool before numpy or pyarrow start their
        threads). A build called from a program that runs other threads spawns them: lean interpreters, slower to
        start.
        """
        context = multiprocessing.get_context(pool_start_method())
        self.skipping = context.Event()
        self.pool = _Pool(workers, init_worker, (settings, os.getpid(), self.skipping), context=context)

    def submit(self, tasks: list[ImageTask]) -> multiprocessing.pool.AsyncResult:
        return self.pool.apply_async(run_tasks, (tasks,))

    def skip_rest(self) -> None:
        """Have the workers skip every image they have not started: the build needs no more results."""
        self.skipping.set()

    def close(self) -> None:
        """End the workers now. Called on a busy pool (the build failed), this can hang: a worker killed while it
        sends a result leaves the result queue locked (python/cpython#96995), so a build first lets it go idle
        (:meth:`locus_data.build_walk.Walk.wait_in_flight`)."""
        self.pool.terminate()
        self.pool.join()


class _Pool(multiprocessing.pool.Pool):
    """:class:`multiprocessing.pool.Pool` whose worker-handler thread wakes only when a worker exits or the pool
    changes state, not whenever a result is waiting to be read.

    The stock pool also wakes that thread on the result pipe, which stays readable until the result-handler thread
    has read the whole message: while a batch of cue bytes is read, the worker handler spins (~0.1 s of the build
    process's CPU per 3,000 cues, taken from the decoding workers on a small machine). It needs no such wake-up:
    a worker's exit wakes it through the worker's sentinel, and a closing or terminated pool, or a cache that
    empties, through the pool's change notifier (which this keeps). The standard library's own
    ``multiprocessing.pool.ThreadPool`` overrides the method the same way (CPython 3.10 to 3.13).
    """

    def _get_sentinels(self) -> list:
        return [self._change_notifier._reader]  # type: ignore[attr-defined]


def pool_start_method() -> str:
    """``"fork"`` where this process has exactly one OS thread (read from Linux ``/proc``), else ``"spawn"``."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return "spawn"
    try:
        return "fork" if len(os.listdir("/proc/self/task")) == 1 else "spawn"
    except OSError:
        return "spawn"


_settings: WorkerSettings | None = None
_skipping: Any = None  # the pool's skip_rest event


def init_worker(settings: WorkerSettings, parent: int, skipping: Any = None) -> None:
    """Pool initializer: keep the settings (and the pool's skip event), and end this worker once ``parent`` (the
    build process) is gone.

    Once the build is killed (kill -9 leaves its pool no chance to stop the workers), an orphaned worker must leave
    quietly: sending a result would end in a BrokenPipeError traceback on the user's terminal, and an idle one would
    wait for tasks forever (the --resume that follows redoes the work). With SIGPIPE's default action a send to the
    dead build ends the process silently. The build passes its own pid as ``parent``: a worker that asked
    ``os.getppid()`` here could already get the pid of init or of a subreaper (a container's init), if the build was
    killed while this worker was starting, and would then wait for that one to exit.
    """
    global _settings, _skipping
    _settings, _skipping = settings, skipping
    Image.preinit()  # PIL's format plugins, loaded here while the build indexes the annotations, not on a first image
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    _set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent:  # after the prctl, so a parent that dies from here on is caught by it
        os._exit(0)
    # the fallback where the prctl is not available (not Linux)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True, name="locus-parent").start()


def _set_parent_death_signal(sig: int) -> bool:
    """Have the kernel send ``sig`` to this process when the thread that started it exits (Linux
    ``prctl(PR_SET_PDEATHSIG)``); False where unavailable. That thread is the one that created the
    :class:`WorkerPool` (in :func:`locus_data.build.build`, which ends the pool before it returns); a worker the pool
    starts later to replace a dead one is a child of the pool's own handler thread, so it is sent ``sig`` when the
    pool shuts down, which ends it anyway."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes  # only Linux workers need it

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(1, sig, 0, 0, 0) == 0  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return False


def _exit_with_parent(parent: int, every: float = 0.2) -> None:
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(0)


def run_tasks(tasks: list[ImageTask]) -> list[ImageResult]:
    """The results of ``tasks``, in order, without their task (the caller has it: pickling it back would cost the
    build's process time); fewer (the first ones) once the pool was told to skip the rest."""
    assert _settings is not None, "init_worker was not called"
    results = []
    for task in tasks:
        if _skipping is not None and _skipping.is_set():
            break
        result = process_source_image(task, _settings)
        result.task = None  # type: ignore[assignment]  # the build holds its tasks: not sent back (see Walk.receive)
        results.append(result)
    return results


def process_source_image(task: ImageTask, settings: WorkerSettings) -> ImageResult:
    """Read, check and decode one source image once, then cut its planned cues (never raises on bad input)."""
    cfg = settings.cfg
    result = ImageResult(task, tuple(c for c in plan_cues(task.image, cfg) if c.size_bin in task.bins))
    try:
        with open(task.path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        result.skip = "missing_file"
        return result
    except OSError as err:
        result.skip, result.detail = "unreadable_file", str(err)
        return result
    result.source_nbytes = len(data)
    try:
        image = open_image(data, task.path)  # header only; over the pixel limit -> ImageTooLarge
        if image.size != (task.width, task.height):
            result.skip, result.detail = "size_mismatch", f"file {image.size}, annotation {task.width}x{task.height}"
            return result
        image.load()  # the one full decode; raises on truncated or corrupt data
        orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    except ImageTooLarge as err:  # a decompression bomb is not a corrupt file: counted apart so the user can tell
        result.skip, result.detail = "image_too_large", str(err)
        return result
    except (OSError, ValueError, SyntaxError) as err:
        result.skip, result.detail = "corrupt_image", f"{type(err).__name__}: {err}"
        return result
    if min(image.size) < cfg.min_cue_side:
        result.skip = "image_too_small"
        return result

    if image.mode != "RGB":
        result.reencoded = f"non_rgb:{image.mode}"
        image = image.convert("RGB")
    elif image.format not in KEEP_FORMATS:
        result.reencoded = f"not_jpeg:{image.format}"
    elif orientation != 1:
        result.reencoded = "exif_orientation"
    full = image
    if cfg.full_max_pixels is not None:
        size = downsampled_size(image.width, image.height, cfg.full_max_pixels)
        if size != image.size:
            full = image.resize(size, Image.Resampling.LANCZOS)
            result.reencoded = "downsampled"
    result.full_size = full.size
    if result.reencoded is not None:
        full_bytes = encode(full, "jpeg", cfg.jpeg_quality)
        if settings.full_dir is not None:
            result.full_path = _write(Path(settings.full_dir) / f"{task.image_id}.jpg", full_bytes)
        else:
            result.full_data = full_bytes

    for spec in result.specs:
        cue = render_cue(image, spec.window, spec.scale, cfg.min_cue_side)
        problem = cue_problem(cue.width, cue.height, cfg.max_cue_aspect, cfg.min_cue_side)
        if problem is not None:
            result.cues.append(CueResult(spec, None, cue.width, cue.height, skip="unsafe_cue"))
            continue
        crop_w, crop_h = spec.window[2] - spec.window[0], spec.window[3] - spec.window[1]
        upsampled = cue_size(crop_w, crop_h, spec.scale, cfg.min_cue_side)[2]
        cue_bytes = encode(cue, cfg.cue_format, cfg.jpeg_quality)
        if settings.cue_dir is not None:
            _write(Path(settings.cue_dir) / spec.cue_name, cue_bytes)
            cue_bytes = None
        result.cues.append(CueResult(spec, cue_bytes, cue.width, cue.height, upsampled))
    return result


def _write(path: Path, data: bytes) -> str:
    # rename into place so a killed build never leaves a half-written image behind a path a row points to
    atomic_write_bytes(path, data)
    return str(path.resolve())
