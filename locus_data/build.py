"""Build train/val.parquet: plan from annotations, decode in a pool, write in committed chunks, finalize atomically.

The steps live in modules named for them, in the order a build uses them:

* :mod:`locus_data.build_inputs`: the annotation file and image folder (:class:`Sources`);
* :mod:`locus_data.build_plan`: the split fill order, the capacity check before decoding, the shortfall after;
* :mod:`locus_data.build_state`: the resumable walk state, chunk commits, starting or resuming ``OUT/.build``;
* :mod:`locus_data.build_walk`: the walk over the images in seeded order, decoded in a pool of
  :mod:`locus_data.worker` processes;
* :mod:`locus_data.build_output`: the Parquet writers and the finishing step (final files renamed into place
  only once complete, config.yaml, stats).

:func:`build` checks the output folder, starts the pool, and runs them. The pool starts first, before this
process loads numpy and pyarrow (which start threads of their own), so its workers can be forked
(:class:`locus_data.worker.WorkerPool`) and are ready by the time the annotations are indexed; pyarrow is loaded by
the walk's writer thread once the pool is busy with the first images (:meth:`locus_data.build_walk.Walk.open_writer`).
"""

import json
import time
from pathlib import Path
from typing import Any

from locus_data.build_inputs import Sources
from locus_data.build_plan import check_capacity, shortfall
from locus_data.build_state import check_finished_build_matches, start_or_resume
from locus_data.build_walk import Walk
from locus_data.coco_index import build_index
from locus_data.config import SPLITS, DataConfig, split_path
from locus_data.errors import UserError
from locus_data.outputs import check_output
from locus_data.sampling import image_order
from locus_data.worker import WorkerPool, worker_settings


__all__ = ["Sources", "build"]


def build(
    cfg: DataConfig, sources: Sources, out: str | Path, workers: int = 1, resume: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Build the dataset into ``out``; returns the stats dict (also written to ``out/stats.json``)."""
    out = Path(out)
    work = out / ".build"
    finals = [split_path(out, s) for s in SPLITS]
    # checked before anything is read or started, so a wrong --out fails at once
    if workers < 0:
        raise UserError(f"--workers must be >= 0 (0 decodes in the main process), got {workers}")
    if out.resolve().is_relative_to(sources.images.resolve()):
        # the build would write cues and parquet files among the source images it walks
        raise UserError(f"--out {out} is inside the source image folder {sources.images}; choose a folder outside it")
    # the build would write parquet files, stats and cues among its own sources (and a second build would then
    # advise removing them): an --out that is, holds or sits inside an input is refused, as is a file
    check_output(out, sources.inputs(), expect="dir")
    if not work.exists() and any(p.exists() for p in finals):
        if resume:
            check_finished_build_matches(cfg, out)
            print(f"{out} already holds a finished build; nothing to resume")
            return json.loads((out / "stats.json").read_text()) if (out / "stats.json").is_file() else {}
        raise UserError(f"{out} already holds a build; remove it or choose another --out")
    if work.exists() and not resume:
        raise UserError(f"{out} holds an interrupted build; pass --resume to continue it, or remove {out}")

    started = time.time()
    print_ = print if progress else (lambda *a, **k: None)
    # started before anything is read or heavy is imported, so the workers can fork (see the module docstring)
    pool = WorkerPool(worker_settings(cfg, out), workers) if workers > 0 else None
    try:
        print_(f"reading {sources.annotations}")
        index = build_index(sources.annotations, cfg)
        order = image_order(index.images, cfg.seed)
        check_capacity(cfg, order)
        state = start_or_resume(cfg, sources, out, resume, len(order), print_)
        Walk(cfg, sources, out, order, state, pool, workers).run(progress)
    finally:
        if pool is not None:
            pool.close()
    missing = shortfall(cfg, state.counts)
    if missing and not cfg.allow_shortfall:
        skipped = ", ".join(f"{reason}: {n}" for reason, n in sorted(state.skipped.items()))
        if state.images_considered and state.skipped.get("missing_file", 0) == state.images_considered:
            # not a data mix problem: the annotations name files the image folder does not have
            raise UserError(
                f"all {state.images_considered} images the build tried are missing from {sources.images} "
                f"({skipped}); "
                "is it the right image folder (COCO: --coco-root holding train2014/)?"
            )
        raise UserError(
            f"not enough usable candidates after walking all {len(order)} images: {'; '.join(missing)}"
            f"{f' (images skipped: {skipped})' if skipped else ''}. "
            "Lower num_train/num_val, raise max_cues_per_image, add images, or set allow_shortfall=true "
            "(then --resume reuses the work done)"
        )
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
        "clamped_annotations": index.clamped,
        "skipped_in_walk": dict(sorted(state.skipped.items())),
        "reencoded_full_images": dict(sorted(state.reencoded.items())),
        "shortfall": missing,
    }
    from locus_data.build_output import finish  # heavy: pyarrow, loaded by the walk by now

    return finish(out, cfg, build_info)
