"""Where a command may write, and how: the one home for output guards and atomic final writes.

Every LOCUS command that writes checks its output with :func:`check_output` before any work starts: an output that
is, contains or sits inside one of the command's inputs is refused (a build into the COCO root, a report over the
dataset's parquet, an export folder holding its own annotations file), as is a file where a folder is expected or
the reverse. ``--overwrite`` only ever lets a command replace an earlier *output*; it never lets an output land on
an input. Paths are compared after resolving ``..`` and symlinks, so a link into the input tree counts as the tree.

Final files are written with :func:`atomic_write_text` / :func:`atomic_write_bytes` (or :func:`atomic_path` for
writers that want a path): to a temporary sibling, then ``os.replace``, so a killed or failed command never leaves a
half-written file under the final name, and an earlier result stays intact until the new one is complete.

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> data = root / "data"
>>> data.mkdir(); (data / "train.parquet").write_bytes(b"PAR1")
4
>>> check_output(data / "train.parquet", [data / "train.parquet"], what="--report")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
locus_data.errors.UserError: --report ... is an input of this command (train.parquet); choose another path
>>> check_output(data / "lengths.json", [data / "train.parquet"], what="--report").name
'lengths.json'
>>> atomic_write_text(data / "lengths.json", "{}")
>>> (data / "lengths.json").read_text()
'{}'
"""

import contextlib
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Literal

from locus_data.errors import UserError


def _resolved(path: str | Path) -> Path:
    return Path(path).expanduser().resolve()


def _inside(path: Path, parent: Path) -> bool:
    return path != parent and path.is_relative_to(parent)


def check_output(
    out: str | Path,
    inputs: Iterable[str | Path | None] = (),
    *,
    overwrite: bool | None = None,
    what: str = "--out",
    expect: Literal["file", "dir"] = "file",
    suffixes: tuple[str, ...] = (),
) -> Path:
    """Refuse an output that would harm an input or cannot be what the command writes; return it as given.

    ``inputs`` are the files and folders the command reads (None entries are ignored): ``out`` may not be one, hold
    one, or lie inside one that is a folder (pass the split files, not the dataset folder, where writing beside
    them is fine). ``expect`` is what ``out`` must be if it exists: a ``file`` (an existing folder is refused) or a
    ``dir`` (an existing file is refused). ``suffixes`` (lower case, with the dot) restrict a file's extension.
    ``overwrite``: None leaves an existing output to the command (resume, append); False refuses an existing file
    or non-empty folder with "pass --overwrite"; True accepts it. Every refusal is one UserError naming ``what``,
    the path and the fix.

    >>> check_output("/", ["/etc/hostname"], expect="dir")
    Traceback (most recent call last):
    ...
    locus_data.errors.UserError: --out / holds an input of this command (/etc/hostname); choose another path
    >>> check_output("/tmp/x.txt", suffixes=(".png", ".jpg"))
    Traceback (most recent call last):
    ...
    locus_data.errors.UserError: --out /tmp/x.txt must end in .png or .jpg
    """
    given = Path(out)
    target = _resolved(given)
    for src in inputs:
        if src is None:
            continue
        source = _resolved(src)
        if target == source:
            raise UserError(f"{what} {given} is an input of this command ({Path(src).name}); choose another path")
        if _inside(source, target):
            raise UserError(f"{what} {given} holds an input of this command ({src}); choose another path")
        if source.is_dir() and _inside(target, source):
            raise UserError(f"{what} {given} is inside the input folder {src}; choose a path outside it")
    if expect == "dir" and given.exists() and not given.is_dir():
        raise UserError(f"{what} {given} is a file; give a folder (a new or empty one)")
    if expect == "file" and given.is_dir():
        hint = f" such as {given / ('out' + suffixes[0])}" if suffixes else ""
        raise UserError(f"{what} {given} is a directory; give a file path{hint}")
    if expect == "file" and given.parent.exists() and not given.parent.is_dir():
        raise UserError(f"{what} {given}: {given.parent} is a file, not a folder")
    if suffixes and given.suffix.lower() not in suffixes:
        raise UserError(f"{what} {given} must end in {' or '.join(suffixes)}")
    if overwrite is False and given.exists() and (given.is_file() or any(given.iterdir())):
        kind = "file" if given.is_file() else "non-empty folder"
        raise UserError(
            f"{what} {given} is an existing {kind}; pass --overwrite to replace it, or choose another path"
        )
    return given


def temporary_sibling(path: str | Path) -> Path:
    """A hidden name beside ``path`` (same folder, hence same file system, so ``os.replace`` is atomic)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write (a file or a folder); on success it replaces ``path``.

    On an exception the temporary is removed and ``path`` is left as it was. A folder replaces only a missing or
    empty ``path`` (``os.replace`` cannot swap a non-empty folder); callers that replace earlier output remove
    their own files first.
    """
    path = Path(path)
    tmp = temporary_sibling(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary sibling and ``os.replace``: all of it or nothing."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` through a temporary sibling and ``os.replace``: all of it or nothing."""
    atomic_write_bytes(path, text.encode(encoding))


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink())


def publish_dir(staging: str | Path, out: str | Path, owned: Callable[[str], bool]) -> None:
    """Move every file of ``staging`` into ``out`` at the same relative path, after removing the earlier output.

    The earlier output is the files of ``out`` whose relative path (``/``-separated) ``owned`` claims; nothing
    else there is touched, so a user's notes or images kept beside an export survive ``--overwrite``. Each file
    arrives by ``os.replace`` (whole or not at all); ``staging`` is removed afterwards.
    """
    staging, out = Path(staging), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for old in _files(out):
        if owned(old.relative_to(out).as_posix()):
            old.unlink()
    for new in _files(staging):
        target = out / new.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(new, target)
    shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def staged_output(out: str | Path, owned: Callable[[str], bool]) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``out`` to write a command's whole output into.

    On success its files replace the earlier output in ``out`` (:func:`publish_dir`); on any error the temporary
    folder is removed and ``out`` is exactly as it was: a failed export leaves no empty JSONL or half a folder of
    images behind. Check ``out`` with :func:`check_output` (``overwrite=...``) first.

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "export"
    >>> with staged_output(out, lambda rel: rel.endswith(".jsonl")) as tmp:
    ...     _ = (tmp / "train.jsonl").write_text("{}")
    >>> sorted(p.name for p in out.iterdir())
    ['train.jsonl']
    >>> try:
    ...     with staged_output(out, lambda rel: rel.endswith(".jsonl")) as tmp:
    ...         _ = (tmp / "train.jsonl").write_text("")
    ...         raise UserError("no annotation matches")
    ... except UserError:
    ...     pass
    >>> (out / "train.jsonl").read_text()
    '{}'
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = temporary_sibling(out)
    shutil.rmtree(staging, ignore_errors=True)  # left by a killed run of this same process id
    staging.mkdir()
    try:
        yield staging
        publish_dir(staging, out, owned)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
