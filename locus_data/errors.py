"""The one exception type the CLI turns into a one-line message instead of a traceback, and the console-script
wrappers that do it (a closed pipe included: ``locus-data stats DS | head`` ends quietly)."""

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar


class UserError(Exception):
    """A mistake the user can fix (missing file, bad config, malformed annotations); the message names it."""


BROKEN_PIPE_STATUS = 141
"""128 + SIGPIPE: what a shell reports for a command whose reader went away (``cat``, ``grep`` do the same)"""

F = TypeVar("F", bound=Callable[..., int])


def _silence_stdout() -> None:
    # the reader is gone: point stdout at /dev/null so the interpreter's final flush cannot raise again
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def quiet_on_broken_pipe(main: F) -> F:
    """Wrap a console entry point: a closed stdout (``... | head``) exits with status 141 and no traceback.

    The wrapper flushes stdout itself, so output still buffered when ``main`` returns fails inside it, not in the
    interpreter's shutdown ("Exception ignored ... BrokenPipeError").
    """

    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> int:
        try:
            status = main(*args, **kwargs)
            sys.stdout.flush()
            return status
        except BrokenPipeError:
            _silence_stdout()
            return BROKEN_PIPE_STATUS

    return wrapper  # type: ignore[return-value]


def reports_user_errors(run: Callable[[Any], int]) -> Callable[[Any], int]:
    """Wrap a command's ``run(args)``: a UserError prints ``error: ...`` on stderr and returns exit status 2; a
    closed stdout returns 141 quietly (see :func:`quiet_on_broken_pipe`)."""

    @functools.wraps(run)
    @quiet_on_broken_pipe
    def wrapper(args: Any) -> int:
        try:
            return run(args)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2

    return wrapper
