"""The resumable side of a build: the walk state with its committed chunks, and starting or resuming ``OUT/.build``.

Every ``chunk_images`` considered images the walk commits a chunk: its rows are written to ``OUT/.build/chunks/``
(tmp file, then rename; full-image bytes of unchanged source files are left out, as they can be read again), then
``OUT/.build/state.json`` (tmp, then rename) records the walk position, counts and source file sizes, and the same
row groups go into the final files (:func:`locus_data.build_output.write_chunk`). A killed build restarts from the
last state with ``--resume`` (refused if the config, annotation file or image folder differ, or a source file changed
size); uncommitted files are deleted and the committed chunks are copied into fresh final files first, so the result
is byte-identical to an uninterrupted build. Safe against a killed process; against power loss only as far as the
filesystem orders renames after data.
"""

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from locus_data.build_inputs import Sources
from locus_data.build_plan import FILL_ORDER
from locus_data.config import SIZE_BINS, DataConfig, load_config, to_dict
from locus_data.errors import UserError
from locus_data.outputs import atomic_write_text


STATE_VERSION = 1
# keys that change neither the rows nor the chunk files, so a resume may change them
RESUME_FREE_KEYS = ("allow_shortfall", "hf_image_features")


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
        atomic_write_text(path, self.to_json() if text is None else text)

    @classmethod
    def load(cls, path: Path) -> "WalkState":
        data = json.loads(path.read_text())
        if data.pop("version", None) != STATE_VERSION:
            raise UserError(f"{path} was written by another locus-data version; remove {path.parent} and rebuild")
        return cls(**data)

    def record_chunk(
        self, rows: dict[str, list[dict[str, Any]]], next_pos: int, skipped: dict[str, int], reencoded: dict[str, int]
    ) -> int:
        """Add a chunk of ``rows`` (per split) and the walk's position and counters after it; returns its number."""
        seq = len(self.chunks)
        files = {split: chunk_file_name(seq, split) for split in FILL_ORDER}
        counts = {split: len(rows[split]) for split in FILL_ORDER}
        sizes = {r["image_id"]: r["source_nbytes"] for s in FILL_ORDER for r in rows[s] if r["source_nbytes"]}
        self.chunks.append({"files": files, "rows": counts, "source_nbytes": {str(k): v for k, v in sizes.items()}})
        self.next_pos = next_pos
        self.skipped, self.reencoded = skipped, reencoded
        return seq


def chunk_file_name(seq: int, split: str) -> str:
    return f"{seq:06d}-{split}.parquet"


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


def check_finished_build_matches(cfg: DataConfig, out: Path) -> None:
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


def start_or_resume(
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


def _drop_uncommitted(work: Path, state: WalkState) -> None:
    import pyarrow.parquet as pq  # heavy: only a resume reads chunk files

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
