"""The annotations file: one JSON line per finished example, appended by a single writer thread.

A line is ``{"key", "task", "status": "ok"|"failed", "text", "reason", "attempts", "model"}``. The key is the row's
:func:`locus_data.rows.example_key`, which does not match the rows of a rebuilt dataset (the exporters then report
such annotations missing).

Resume reads the file, keeps every complete line and skips those keys. A run killed mid-write can leave a torn last
line; :func:`load_annotations` with ``repair=True`` cuts it off so the next append starts on a fresh line. A bad line
anywhere else is not a crash artifact, so it is an error naming the line.
"""

import json
import os
import queue
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from locus_data.errors import UserError


STATUSES = ("ok", "failed")


@dataclass
class Annotation:
    """One finished example."""

    key: str
    """stable example key, see :func:`locus_data.rows.example_key`"""
    task: str
    """rationale or refexp"""
    status: str
    """ok: ``text`` holds the cleaned teacher answer; failed: ``reason`` says why the last attempt failed"""
    text: str | None
    """the validated answer (None when failed)"""
    reason: str | None
    """failure category and detail (None when ok)"""
    attempts: int
    """requests sent for this example"""
    model: str
    """teacher model name as served"""

    def to_line(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False) + "\n"


def load_annotations(path: Path, repair: bool = False) -> dict[str, Annotation]:
    """Read an annotations file into ``{key: Annotation}``; a missing file is empty.

    A torn last line (no trailing newline and not valid JSON) is dropped, and with ``repair`` cut from the file.
    Raises UserError for a corrupt line elsewhere or a key that appears twice.
    """
    if not path.exists():
        return {}
    data = path.read_bytes()
    lines = data.split(b"\n")
    torn = lines.pop()  # text after the last newline: b"" for a clean file, a torn write after a kill
    complete = False
    if torn:
        try:
            json.loads(torn)
            lines.append(torn)  # a complete record written without its newline: keep it
            complete = True
        except ValueError:
            pass
    records = _parse_records(path, lines)
    # repaired only once every other line has parsed: a file that is not annotations at all (a parquet given as
    # --out by mistake) is refused above, never cut
    if repair and torn:
        if complete:
            with path.open("ab") as f:
                f.write(b"\n")
        else:
            os.truncate(path, len(data) - len(torn))
    return records


def _parse_records(path: Path, lines: list[bytes]) -> dict[str, Annotation]:
    records: dict[str, Annotation] = {}
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
            record = Annotation(**obj)
        except (ValueError, TypeError):
            raise UserError(f"{path}:{number}: not an annotation record: {raw[:80]!r}") from None
        if record.status not in STATUSES:
            raise UserError(f"{path}:{number}: status must be one of {list(STATUSES)}, got {record.status!r}")
        if record.key in records:
            raise UserError(f"{path}:{number}: key {record.key!r} appears twice")
        records[record.key] = record
    return records


def rewrite_annotations(path: Path, records: list[Annotation]) -> None:
    """Replace the file with ``records`` atomically (write a sibling, then rename), so a kill loses nothing."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.writelines(r.to_line() for r in records)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class AnnotationWriter:
    """Appends records from any thread through one writer thread; each line is flushed as soon as it is written.

    One thread owns the file handle, so lines from concurrent workers never interleave, and a flush per line means
    a killed run loses at most the line being written (which resume then cuts off).
    """

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")
        self._queue: queue.Queue[Annotation | None] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="annotation-writer", daemon=True)
        self._thread.start()

    def put(self, record: Annotation) -> None:
        if self._error is not None:
            raise OSError(f"annotation writer failed: {self._error}")
        self._queue.put(record)

    def close(self) -> None:
        """Write everything queued, then close the file; re-raises a write error."""
        self._queue.put(None)
        self._thread.join()
        self._file.close()
        if self._error is not None:
            raise OSError(f"annotation writer failed: {self._error}")

    def _loop(self) -> None:
        while (record := self._queue.get()) is not None:
            if self._error is not None:
                continue  # keep draining so producers never block; close() reports the error
            try:
                self._file.write(record.to_line())
                self._file.flush()
            except OSError as err:  # disk full, file removed: stop writing, tell the caller
                self._error = err


def load_for_export(path: str | Path, task: str) -> dict[str, Annotation]:
    """Annotations of ``task`` from ``path`` for an exporter; raises UserError for a missing file or another task."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"--annotations {path} is a directory; give the JSONL file locus-data annotate wrote")
    if not path.is_file():
        raise UserError(f"annotations file not found: {path}")
    records = load_annotations(path)
    other = {r.task for r in records.values()} - {task}
    if other:
        raise UserError(f"{path} holds {'/'.join(sorted(other))} annotations; this export needs {task} annotations")
    return records
