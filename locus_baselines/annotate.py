"""``locus-data annotate``: have a teacher model served over an OpenAI-compatible API annotate a LOCUS dataset.

    locus-data annotate --data data/locus_cue --task rationale --endpoint http://localhost:8000/v1 \\
        --model Qwen/Qwen2.5-VL-72B-Instruct --concurrency 32

Every example ends as exactly one line of the annotations file (``DATA/annotations_<task>.jsonl`` unless ``--out``):
``ok`` with the cleaned answer, or ``failed`` with the reason of its last attempt. Timeouts, dropped connections,
429 (honouring ``Retry-After``), 5xx, malformed, empty and invalid answers are retried with exponential backoff up
to ``--max-retries`` times; 401/403/404 stop the run, since every other request would fail the same way. Lines are
appended and flushed as examples finish, so a killed run resumes where it stopped: finished keys are skipped, the
requests that were in flight are sent again, and no key is written twice. ``--retry-failed`` re-attempts the
failed ones. A run in which every example failed exits 1. Requests go through the openai SDK
(:mod:`locus_baselines.teacher`, installed by ``pip install -e '.[baselines]'``).

The API key is read from ``$OPENAI_API_KEY`` (or the variable named by ``--api-key-env``) and sent only as the
``Authorization`` header; it never appears in logs, errors, the annotations file or the summary.
"""

import argparse
import logging
import os
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from tqdm import tqdm

from locus_baselines.annotations import Annotation, AnnotationWriter, load_annotations, rewrite_annotations
from locus_baselines.teacher import TeacherClient, TeacherConfig, TeacherError
from locus_baselines.teacher_tasks import TASKS, TeacherTask, load_task
from locus_data.config import SPLITS
from locus_data.errors import UserError, reports_user_errors
from locus_data.outputs import check_output
from locus_data.rows import Row, example_key, iter_rows, read_batches, split_files
from locus_data.schema import ANSWER, IMAGE_ID
from locus_reward.frames import COORD_FRAMES


logger = logging.getLogger(__name__)

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
MAX_REASONS_SHOWN = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="dataset directory with train.parquet / val.parquet")
    parser.add_argument("--task", required=True, choices=TASKS, help="rationale (SFT baseline) or refexp (text cue)")
    parser.add_argument("--endpoint", required=True, help="OpenAI-compatible base URL, e.g. http://localhost:8000/v1")
    parser.add_argument("--model", required=True, help="served model name")
    parser.add_argument("--out", help="annotations JSONL (default: DATA/annotations_<task>.jsonl)")
    parser.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS, help="splits to annotate")
    parser.add_argument(
        "--limit", type=int, help="annotate at most N >= 1 examples per split (first rows; default: all)"
    )
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight at once (default 16)")
    parser.add_argument("--max-retries", type=int, default=5, help="retries per example after the first attempt")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a silent request times out")
    parser.add_argument("--backoff", type=float, default=1.0, help="first retry delay in seconds (doubles per retry)")
    parser.add_argument("--max-backoff", type=float, default=60.0, help="longest retry delay, Retry-After included")
    parser.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (default 0)")
    parser.add_argument("--max-tokens", type=int, default=512, help="completion token limit (default 512)")
    parser.add_argument("--api-key-env", help=f"environment variable holding the API key (default {DEFAULT_KEY_ENV})")
    parser.add_argument("--prompt", help="teacher prompt file (default locus_baselines/prompts/teacher_<task>.txt)")
    parser.add_argument(
        "--teacher-coord-frame",
        default="qwen2_5_vl",
        choices=COORD_FRAMES,
        help="coordinate convention of the box shown to the teacher (default qwen2_5_vl, for Qwen2.5-VL-72B)",
    )
    parser.add_argument("--teacher-min-pixels", type=int, help="pixel floor before the teacher's processor")
    parser.add_argument("--teacher-max-pixels", type=int, help="pixel cap before the teacher's processor")
    parser.add_argument(
        "--refexp-cue",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="refexp: also show the teacher the cropped cue (default on)",
    )
    parser.add_argument("--max-words", type=int, default=25, help="refexp: longest accepted expression (default 25)")
    parser.add_argument("--retry-failed", action="store_true", help="re-attempt examples recorded as failed")


@reports_user_errors
def run(args: argparse.Namespace) -> int:
    if args.concurrency < 1 or args.max_retries < 0 or args.timeout <= 0:
        raise UserError("--concurrency and --timeout must be positive, --max-retries non-negative")
    _check_numbers(args)
    task = load_task(
        args.task,
        args.prompt,
        teacher_coord_frame=args.teacher_coord_frame,
        teacher_min_pixels=args.teacher_min_pixels,
        teacher_max_pixels=args.teacher_max_pixels,
        show_cue=args.refexp_cue,
        max_words=args.max_words,
    )
    try:
        client = TeacherClient(
            TeacherConfig(
                endpoint=args.endpoint,
                model=args.model,
                api_key=_api_key(args.api_key_env),
                timeout=args.timeout,
                max_retries=args.max_retries,
                backoff=args.backoff,
                max_backoff=args.max_backoff,
                temperature=args.temperature,
                max_tokens=args.max_tokens,
            )
        )
    except ValueError as err:
        raise UserError(str(err)) from None
    files = split_files(args.data, args.splits)
    out = Path(args.out) if args.out else Path(args.data) / f"annotations_{args.task}.jsonl"
    # before the resume reads (and repairs) it: never a split file, a folder or anything but a .jsonl
    check_output(out, [*files.values(), args.prompt], suffixes=(".jsonl",))
    keys = _dataset_keys(files, args.limit)
    if not keys:
        raise UserError(f"{args.data} has no rows in {', '.join(files)}; rebuild the dataset")
    done = _resume(out, args.task, args.model, args.retry_failed)
    stale = len(done.keys() - keys)
    if stale:
        logger.warning("%d annotation(s) in %s match no example of this dataset (was it rebuilt?)", stale, out)
    todo = len(keys - done.keys())
    print(f"annotate {args.task}: {len(keys)} examples, {len(keys) - todo} already in {out}, {todo} to go")
    stats = _annotate(client, task, _pending_rows(files, args.limit, done), todo, out, args)
    _print_summary(stats, out)
    if stats.fatal:
        print(f"error: teacher refused the requests ({stats.fatal})", file=sys.stderr)
        return 1
    if stats.interrupted:
        return 130
    if stats.status["failed"] and not stats.status["ok"]:
        # nothing worked: a wrong endpoint, a server down or a prompt the teacher cannot answer, not bad luck
        reasons = ", ".join(f"{k}: {n}" for k, n in stats.failure_reasons.most_common(3))
        print(f"error: every one of {stats.status['failed']} examples failed ({reasons})", file=sys.stderr)
        return 1
    return 0


def _check_numbers(args: argparse.Namespace) -> None:
    """Values a real server would answer with 400 on every request, or that make every answer invalid."""
    for flag, value in (("--limit", args.limit), ("--max-words", args.max_words), ("--max-tokens", args.max_tokens)):
        if value is not None and value < 1:
            hint = " (leave it out to annotate every row)" if flag == "--limit" else ""
            raise UserError(f"{flag} must be at least 1, got {value}{hint}")
    if args.temperature < 0:
        raise UserError(f"--temperature must be >= 0, got {args.temperature}")
    low, high = args.teacher_min_pixels, args.teacher_max_pixels
    for flag, value in (("--teacher-min-pixels", low), ("--teacher-max-pixels", high)):
        if value is not None and value < 1:
            raise UserError(f"{flag} must be at least 1, got {value}")
    if low is not None and high is not None and low > high:
        raise UserError(f"--teacher-min-pixels {low} is larger than --teacher-max-pixels {high}")


def _api_key(env_name: str | None) -> str | None:
    # the key itself never goes through argparse, so it cannot leak through shell history or `ps`
    name = env_name or DEFAULT_KEY_ENV
    key = os.environ.get(name)
    if not key:
        if env_name:
            raise UserError(f"--api-key-env {name}: that environment variable is not set")
        logger.info("%s is not set; sending requests without an Authorization header", name)
        return None
    return key


def _resume(out: Path, task: str, model: str, retry_failed: bool) -> dict[str, Annotation]:
    done = load_annotations(out, repair=True)
    for record in done.values():
        if record.task != task or record.model != model:
            raise UserError(
                f"{out} holds {record.task} annotations by {record.model!r}; "
                f"use the same --task/--model to resume or another --out"
            )
    if retry_failed:
        ok = {k: r for k, r in done.items() if r.status == "ok"}
        if len(ok) != len(done):
            rewrite_annotations(out, list(ok.values()))
        done = ok
    return done


def _dataset_keys(files: dict[str, Path], limit: int | None) -> set[str]:
    # only the two small columns the key needs, so counting 100K rows does not read the images
    keys: set[str] = set()
    for split, path in files.items():
        table = next(read_batches(path, [ANSWER, IMAGE_ID], limit=limit, batch_rows=None))
        answers, image_ids = table.column(ANSWER).to_pylist(), table.column(IMAGE_ID).to_pylist()
        keys.update(example_key(split, i, answers[i], image_ids[i]) for i in range(table.num_rows))
    return keys


def _pending_rows(files: dict[str, Path], limit: int | None, done: dict[str, Annotation]):
    for split, path in files.items():
        for row in iter_rows(split, path):
            if limit is not None and row.index >= limit:
                break
            if row.key not in done:
                yield row


class RunStats:
    """Counts for the summary, updated by the main thread only."""

    def __init__(self, task: str, model: str):
        self.task, self.model = task, model
        self.status: Counter[str] = Counter()
        self.failure_reasons: Counter[str] = Counter()
        self.retried_errors: Counter[str] = Counter()
        self.requests = 0
        self.fatal: str | None = None
        self.interrupted = False
        self.start = time.monotonic()

    def add(self, record: Annotation, errors: list[TeacherError]) -> None:
        self.status[record.status] += 1
        self.requests += record.attempts
        if record.status == "failed":
            self.failure_reasons[record.reason.split(":")[0]] += 1
        # errors that were followed by another attempt (a failed record's last error is its reason instead)
        self.retried_errors.update(e.kind for e in (errors[:-1] if record.status == "failed" else errors))


class FatalError(Exception):
    """A teacher error that will repeat for every example (bad key, endpoint or model)."""


def _annotate_one(
    client: TeacherClient, task: TeacherTask, row: Row, stop: threading.Event
) -> tuple[Annotation, list[TeacherError]]:
    """All attempts for one example; returns its record and the errors met on the way."""
    model = client.config.model

    def record(status: str, text: str | None, reason: str | None, attempts: int) -> Annotation:
        return Annotation(row.key, task.name, status, text, reason, attempts, model)

    try:
        content = task.content(row)
    except (UserError, ValueError) as err:  # one unreadable image or a bad answer cell fails this row only
        return record("failed", None, f"bad example: {err}", 0), []
    errors: list[TeacherError] = []
    for attempt in range(1, client.config.max_retries + 2):
        try:
            return record("ok", task.clean(client.complete(content)), None, attempt), errors
        except TeacherError as err:
            if err.fatal:
                raise FatalError(str(err)) from None
            errors.append(err)
            if not err.retryable or attempt > client.config.max_retries:
                return record("failed", None, client.redact(str(err)), attempt), errors
            # Event.wait instead of sleep: a fatal error elsewhere or Ctrl-C ends the backoff at once
            if stop.wait(client.retry_delay(attempt, err)):
                raise FatalError("stopped") from None
    raise AssertionError("unreachable")


def _annotate(client: TeacherClient, task: TeacherTask, rows, todo: int, out: Path, args) -> RunStats:
    stats = RunStats(task.name, client.config.model)
    stop = threading.Event()
    writer = AnnotationWriter(out)
    # a bounded window of submitted examples keeps every worker busy without loading all images up front
    window = 2 * args.concurrency
    progress = tqdm(total=todo, desc=f"annotate {task.name}", unit="ex", dynamic_ncols=True)
    pool = ThreadPoolExecutor(max_workers=args.concurrency, thread_name_prefix="teacher")
    pending: set[Future] = set()
    try:
        for row in rows:
            if stop.is_set():
                break
            pending.add(pool.submit(_annotate_one, client, task, row, stop))
            if len(pending) >= window:
                pending = _collect(pending, writer, stats, progress, stop, FIRST_COMPLETED)
        while pending:
            pending = _collect(pending, writer, stats, progress, stop, FIRST_COMPLETED)
    except KeyboardInterrupt:
        stats.interrupted = True
        stop.set()
        for future in pending:
            future.cancel()
        # examples already answered are still written; the rest are redone on resume
        _collect(pending, writer, stats, progress, stop, ALL_COMPLETED)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        progress.close()
        writer.close()
    return stats


def _collect(
    pending: set[Future], writer: AnnotationWriter, stats: RunStats, progress: tqdm, stop: threading.Event, when: str
) -> set[Future]:
    """Write the finished futures' records; returns the still-pending ones."""
    finished, pending = wait(pending, return_when=when)
    for future in finished:
        if future.cancelled():
            continue
        try:
            record, errors = future.result()
        except FatalError as err:
            if str(err) != "stopped" and stats.fatal is None:
                stats.fatal = str(err)
                stop.set()
                for other in pending:
                    other.cancel()
            continue
        writer.put(record)
        stats.add(record, errors)
        progress.update(1)
        progress.set_postfix(ok=stats.status["ok"], failed=stats.status["failed"], refresh=False)
    return pending


def _print_summary(stats: RunStats, out: Path) -> None:
    elapsed = max(time.monotonic() - stats.start, 1e-9)
    finished = stats.status["ok"] + stats.status["failed"]
    lines = [
        f"annotate {stats.task} with {stats.model}: {stats.status['ok']} ok, {stats.status['failed']} failed "
        f"in {elapsed:.1f}s ({finished / elapsed:.2f} examples/s, {stats.requests} requests, "
        f"{stats.requests / elapsed:.2f} requests/s)",
    ]
    if stats.failure_reasons:
        shown = ", ".join(f"{k}: {n}" for k, n in stats.failure_reasons.most_common(MAX_REASONS_SHOWN))
        lines.append(f"failure reasons: {shown}")
    if stats.retried_errors:
        shown = ", ".join(f"{k}: {n}" for k, n in stats.retried_errors.most_common(MAX_REASONS_SHOWN))
        lines.append(f"retried errors: {shown}")
    lines.append(f"annotations: {out}")
    if stats.fatal:
        lines.append(f"stopped: {stats.fatal}")
    elif stats.interrupted:
        lines.append("interrupted: run the same command again to resume")
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="locus-data annotate", description=__doc__.splitlines()[0])
    add_arguments(parser)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for name in ("httpx", "httpx2", "openai"):  # one INFO line per request would bury the progress bar
        logging.getLogger(name).setLevel(logging.WARNING)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
