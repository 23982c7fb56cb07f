"""``locus-data annotate`` end to end against the scripted loopback teacher."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from locus_baselines import annotate
from locus_baselines.annotations import load_annotations

from .fake_teacher import FakeTeacher
from .tiny_dataset import SECRET_KEY, VAL_OFFSET, box_text, write_dataset


REPO = Path(__file__).resolve().parents[2]
RATIONALE = "The cue is the striped awning near the top left, just above the blue door."
# fast settings: 0.3 s timeout, 10 ms backoff, boxes shown as stored so the server can tell examples apart
FAST = ["--timeout", "0.3", "--backoff", "0.01", "--teacher-coord-frame", "original"]


def cli(dataset: Path, url: str, *extra: str) -> list[str]:
    return ["--data", str(dataset), "--task", "rationale", "--endpoint", url, "--model", "teacher", *FAST, *extra]


def lines_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def example_of(prompt: str, indices) -> int:
    return next(i for i in indices if box_text(i) in prompt)


ALL = [*range(8), *range(VAL_OFFSET, VAL_OFFSET + 4)]


def test_every_example_ends_annotated_or_failed(dataset, monkeypatch, capsys, caplog):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
    transient = [
        ("status", 429, {"Retry-After": "0"}, "rate limited"),
        ("drop",),
        ("stall", 0.6),
        ("malformed",),
        ("echo_auth", 500),  # a transient error whose body leaks the key
    ]
    always = {
        0: ("status", 500, {}, "internal error"),  # never recovers: failed after all retries
        1: ("empty",),  # never answers: failed after all retries
        2: ("ok", "It is at [10, 20, 60, 90]."),  # leaks coordinates every time: failed as invalid
        3: ("status", 400, {}, "bad request"),  # not retryable: failed after one attempt
    }
    seen: Counter[int] = Counter()

    def script(n: int, prompt: str):
        i = example_of(prompt, ALL)
        seen[i] += 1
        if i in always:
            return always[i]
        return transient[i % len(transient)] if seen[i] == 1 else ("ok", RATIONALE)  # one transient error, then ok

    with FakeTeacher(script) as server:
        rc = annotate.main(cli(dataset, server.url, "--max-retries", "2", "--concurrency", "3"))
    assert rc == 0
    records = lines_of(dataset / "annotations_rationale.jsonl")
    assert len(records) == len({r["key"] for r in records}) == 12  # every example exactly once
    by_box = {example_of(p, ALL) for p in server.prompts}
    assert by_box == set(ALL)
    failed = {r["reason"].split(":")[0]: r["attempts"] for r in records if r["status"] == "failed"}
    assert failed == {"http 500": 3, "empty answer": 3, "invalid answer": 3, "http 400": 1}
    ok = [r for r in records if r["status"] == "ok"]
    assert len(ok) == 8 and all(r["text"] == RATIONALE and r["attempts"] == 2 for r in ok)
    assert server.requests == 3 * 3 + 1 + 8 * 2  # bounded: retries stop at --max-retries
    out = capsys.readouterr()
    assert "8 ok, 4 failed" in out.out and "failure reasons:" in out.out and "examples/s" in out.out
    # the key was sent, and appears nowhere we write: annotations, stdout, stderr (progress bar), logs
    assert set(server.auth_headers) == {f"Bearer {SECRET_KEY}"}
    for text in ((dataset / "annotations_rationale.jsonl").read_text(), out.out, out.err, caplog.text):
        assert SECRET_KEY not in text


def test_refexp_answers_are_trimmed_and_checked(dataset, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # a local vLLM needs no key: no Authorization header
    long = " ".join(["word"] * 30)

    def script(n: int, prompt: str):
        i = example_of(prompt, ALL)
        return ("ok", long) if i == 0 else ("ok", f'"the small cup number {i} on the shelf"')

    with FakeTeacher(script) as server:
        args = ["--data", str(dataset), "--task", "refexp", "--endpoint", server.url, "--model", "teacher", *FAST]
        assert annotate.main([*args, "--max-retries", "1", "--splits", "train"]) == 0
    records = {r["key"]: r for r in lines_of(dataset / "annotations_refexp.jsonl")}
    assert len(records) == 8
    texts = sorted(r["text"] for r in records.values() if r["status"] == "ok")
    assert texts == sorted(f"the small cup number {i} on the shelf" for i in range(1, 8))  # quotes trimmed
    (failure,) = [r for r in records.values() if r["status"] == "failed"]
    assert failure["reason"] == "invalid answer: expression has 30 words (max 25)"  # over 25 words, twice
    assert set(server.auth_headers) == {None}


@pytest.mark.slow  # ~7 s: a real process killed mid-run and resumed
def test_resume_after_sigkill_has_no_duplicates_and_no_losses(tmp_path):
    dataset = write_dataset(tmp_path / "data", 40, 0)
    out = dataset / "annotations_rationale.jsonl"
    env = {**os.environ, "OPENAI_API_KEY": SECRET_KEY, "PYTHONPATH": str(REPO)}
    # 0.1 s per answer, 4 at a time: about a second of work, so the kill lands mid-run
    with FakeTeacher(lambda n, prompt: ("slow", 0.1, RATIONALE)) as server:
        args = cli(dataset, server.url, "--concurrency", "4", "--timeout", "5", "--splits", "train")
        command = [sys.executable, "-m", "locus_baselines.annotate", *args]
        logs = [tmp_path / "first.log", tmp_path / "second.log"]
        with logs[0].open("w") as log:
            first = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 30
            while (not out.exists() or out.read_text().count("\n") < 8) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert first.poll() is None, "the first run finished before it could be killed"
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        killed_at = out.read_text().count("\n")
        assert 8 <= killed_at < 40
        with logs[1].open("w") as log:
            second = subprocess.run(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=60)
        assert second.returncode == 0
    keys = [r["key"] for r in lines_of(out)]
    assert len(keys) == len(set(keys)) == 40  # every example exactly once
    assert f"{killed_at} already in" in logs[1].read_text()  # the resumed run skipped what was written
    assert server.requests <= 40 + 2 * 4  # only the killed run's in-flight window was asked twice
    for path in (out, *logs):
        assert SECRET_KEY not in path.read_text()


def test_torn_last_line_is_cut_and_its_example_redone(dataset, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
    out = dataset / "annotations_rationale.jsonl"
    with FakeTeacher(lambda n, prompt: ("ok", RATIONALE)) as server:
        assert annotate.main(cli(dataset, server.url, "--splits", "train", "--limit", "3")) == 0
        # a kill during a write leaves a partial line with no newline
        out.write_text(out.read_text() + '{"key": "train/000003-abc", "task": "rat')
        assert annotate.main(cli(dataset, server.url, "--splits", "train")) == 0
    records = lines_of(out)  # every line parses: the torn one was cut, not glued to the next
    assert len(records) == len({r["key"] for r in records}) == 8
    assert server.requests == 8


def test_retry_failed_reattempts_only_the_failed(dataset, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
    out = dataset / "annotations_rationale.jsonl"

    def first(n: int, prompt: str):
        return ("status", 500, {}, "down") if box_text(0) in prompt else ("ok", RATIONALE)

    with FakeTeacher(first) as server:
        assert annotate.main(cli(dataset, server.url, "--max-retries", "0")) == 0
    assert Counter(r["status"] for r in lines_of(out)) == {"ok": 11, "failed": 1}
    with FakeTeacher(lambda n, prompt: ("ok", RATIONALE)) as server:
        assert annotate.main(cli(dataset, server.url)) == 0  # plain resume: failures count as finished
        assert server.requests == 0
        assert annotate.main(cli(dataset, server.url, "--retry-failed")) == 0
        assert server.requests == 1
    records = lines_of(out)
    assert len(records) == len({r["key"] for r in records}) == 12
    assert all(r["status"] == "ok" for r in records)


def test_wrong_key_stops_the_run_early(dataset, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
    with FakeTeacher(lambda n, prompt: ("status", 401, {}, "invalid api key")) as server:
        assert annotate.main(cli(dataset, server.url, "--concurrency", "2")) == 1
    assert server.requests <= 2 * 2  # at most the submitted window, not 12 examples x retries
    assert not (dataset / "annotations_rationale.jsonl").read_text()  # nothing recorded as failed: rerun later
    assert "check the API key" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--data", "/nonexistent/locus"], "dataset directory not found"),  # typo in --data
        (["--prompt", "/nonexistent/prompt.txt"], "teacher prompt not found"),  # typo in --prompt
        (["--api-key-env", "LOCUS_NO_SUCH_VAR"], "environment variable is not set"),  # named key variable missing
        (["--endpoint", "localhost:8000/v1"], "http"),  # endpoint without a scheme
        (["--concurrency", "0"], "positive"),  # no worker could ever run
    ],
)
def test_user_mistakes_are_one_line_errors(dataset, capsys, extra, message):
    args = ["--data", str(dataset), "--task", "rationale", "--endpoint", "http://127.0.0.1:9/v1", "--model", "m"]
    assert annotate.main([*args, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_resume_with_another_model_is_refused(dataset, monkeypatch, capsys):
    # mixing two teachers' answers in one file would make the baseline unreproducible
    with FakeTeacher(lambda n, prompt: ("ok", RATIONALE)) as server:
        assert annotate.main(cli(dataset, server.url, "--limit", "1")) == 0
        args = cli(dataset, server.url)
        args[args.index("teacher")] = "other-teacher"
        assert annotate.main(args) == 2
    assert "use the same --task/--model" in capsys.readouterr().err
    assert len(load_annotations(dataset / "annotations_rationale.jsonl")) == 2  # untouched: one per split
