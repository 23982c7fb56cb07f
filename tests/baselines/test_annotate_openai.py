"""``locus-data annotate`` on the openai SDK: what the SDK changes for the user, against the loopback teacher."""

import sys

from locus_baselines import annotate
from locus_baselines.teacher import TeacherClient, TeacherConfig

from .fake_teacher import FakeTeacher
from .test_annotate_cli import cli, lines_of


def test_a_run_where_every_request_fails_exits_non_zero(dataset, capsys):
    # a teacher that answers every request with 500: each example ends failed, and the run must not look like a success
    with FakeTeacher(lambda n, prompt: ("status", 500, {}, "boom")) as server:
        assert annotate.main(cli(dataset, server.url, "--max-retries", "1")) == 1
    records = lines_of(dataset / "annotations_rationale.jsonl")
    assert len(records) == 12 and {r["status"] for r in records} == {"failed"}
    assert all(r["reason"] == "http 500: boom" for r in records)  # the reason is recorded per example
    out = capsys.readouterr()
    assert "0 ok, 12 failed" in out.out and "every one of 12 examples failed (http 500: 12)" in out.err


def test_one_good_answer_is_enough_for_exit_zero(dataset):
    # a mostly failing run still produced data: the failures are recorded and --retry-failed can redo them
    with FakeTeacher(lambda n, prompt: ("ok", "fine") if n == 1 else ("status", 400, {}, "no")) as server:
        assert annotate.main(cli(dataset, server.url, "--max-retries", "0", "--concurrency", "1")) == 0


def test_requests_are_sent_by_the_openai_sdk(dataset):
    # the SDK identifies itself; our client adds no transport of its own
    with FakeTeacher(lambda n, prompt: ("ok", "a red mug")) as server:
        client = TeacherClient(TeacherConfig(endpoint=server.url, model="teacher", timeout=2.0))
        assert client.complete([{"type": "text", "text": "hi"}]) == "a red mug"
    assert type(client._client).__module__.startswith("openai")
    assert server.auth_headers == [None]  # keyless server: no Authorization header at all, not "Bearer EMPTY"


def test_missing_sdk_is_a_one_line_error_naming_the_extra(dataset, monkeypatch, capsys):
    # the SDK is an optional extra: without it the command says how to install it instead of a traceback
    monkeypatch.setitem(sys.modules, "openai", None)  # what `import openai` sees when it is not installed
    assert annotate.main(cli(dataset, "http://127.0.0.1:9/v1")) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: the teacher client needs the openai SDK; install it with: pip install -e '.[baselines]'"
