"""One request at a time against the loopback teacher: each server behaviour maps to the right error."""

import time

import pytest

from locus_baselines.teacher import TeacherClient, TeacherConfig, TeacherError, _parse_retry_after

from .fake_teacher import FakeTeacher
from .tiny_dataset import SECRET_KEY


CONTENT = [{"type": "text", "text": "Describe the image."}]


def client_for(server: FakeTeacher, **overrides) -> TeacherClient:
    config = dict(endpoint=server.url, model="teacher", api_key=SECRET_KEY, timeout=0.5, backoff=0.01)
    return TeacherClient(TeacherConfig(**{**config, **overrides}))


def test_answer_text_comes_back_and_key_is_sent_as_bearer():
    # the plain success path, plus the header an OpenAI-compatible server authenticates with
    with FakeTeacher(lambda n, text: ("ok", "a red mug")) as server:
        assert client_for(server).complete(CONTENT) == "a red mug"
    assert server.auth_headers == [f"Bearer {SECRET_KEY}"]


@pytest.mark.parametrize(
    "action, kind, retryable, fatal",
    [
        (("status", 429, {"Retry-After": "0"}, "slow down"), "http 429", True, False),  # rate limited: wait, retry
        (("status", 500, {}, "boom"), "http 500", True, False),  # server error: transient
        (("status", 503, {}, ""), "http 503", True, False),  # overloaded vLLM: transient
        (("status", 400, {}, "image too large"), "http 400", False, False),  # this request is bad: retrying won't help
        (("status", 401, {}, "bad key"), "http 401", False, True),  # wrong key: every request would fail, stop
        (("status", 404, {}, "no such model"), "http 404", False, True),  # wrong model name: stop
        (("drop",), "connection error", True, False),  # connection closed without a response
        (("stall", 1.0), "timeout", True, False),  # silent past the client's 0.5 s timeout
        (("malformed",), "malformed response", True, False),  # cut-off JSON body
        (("empty",), "empty answer", True, False),  # 200 with empty content
        (("length", "The cue is"), "truncated answer", True, False),  # hit max_tokens mid-sentence
    ],
)
def test_each_failure_mode_raises_its_category(action, kind, retryable, fatal):
    with FakeTeacher(lambda n, text: action) as server:
        with pytest.raises(TeacherError) as info:
            client_for(server).complete(CONTENT)
    assert (info.value.kind, info.value.retryable, info.value.fatal) == (kind, retryable, fatal)


def test_connection_is_reopened_after_a_drop():
    # a dropped keep-alive connection must not poison the worker's next request
    script = {1: ("drop",), 2: ("ok", "second")}
    with FakeTeacher(lambda n, text: script[n]) as server:
        client = client_for(server)
        with pytest.raises(TeacherError):
            client.complete(CONTENT)
        assert client.complete(CONTENT) == "second"


def test_retry_after_sets_the_delay_and_is_capped():
    with FakeTeacher(lambda n, text: ("status", 429, {"Retry-After": "0.3"}, "")) as server:
        client = client_for(server, max_backoff=2.0)
        with pytest.raises(TeacherError) as info:
            client.complete(CONTENT)
    assert info.value.retry_after == pytest.approx(0.3)
    assert client.retry_delay(1, info.value) >= 0.3  # the server's wish beats the 0.01 s backoff
    assert client.retry_delay(10, TeacherError("http 429", "", retry_after=999.0)) == 2.0  # but never past the cap


def test_retry_after_accepts_seconds_and_http_dates():
    assert _parse_retry_after("7") == 7.0  # delta-seconds
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 < _parse_retry_after(future) <= 30  # an HTTP date in the future
    assert _parse_retry_after("soon") is None  # unreadable: fall back to the backoff


def test_key_echoed_by_the_server_is_redacted():
    # a leaky server repeats the Authorization header in its error body; the error text must not carry the key
    with FakeTeacher(lambda n, text: ("echo_auth", 500)) as server:
        with pytest.raises(TeacherError) as info:
            client_for(server).complete(CONTENT)
    assert SECRET_KEY not in str(info.value) and "***" in str(info.value)
    assert SECRET_KEY not in repr(client_for(server).config)  # nor in the config's repr


def test_endpoint_must_be_http():
    # a typo such as "localhost:8000/v1" (no scheme) is a user error, named
    with pytest.raises(ValueError, match="http"):
        TeacherClient(TeacherConfig(endpoint="localhost:8000/v1", model="m"))
