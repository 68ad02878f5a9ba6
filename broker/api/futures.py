"""The futures every parked answer of the request layer travels in."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from typing import TypeVar

A = TypeVar("A")
B = TypeVar("B")


def done(value: A) -> Future[A]:
    """A future that already has its answer."""
    future: Future[A] = Future()
    future.set_result(value)
    return future


def then(future: Future[A], convert: Callable[[A], B]) -> Future[B]:
    """A future of `convert` applied to `future`'s result, completed on whichever thread completes `future`."""
    out: Future[B] = Future()

    def relay(finished: Future[A]) -> None:
        try:
            out.set_result(convert(finished.result()))
        except BaseException as e:
            out.set_exception(e)

    future.add_done_callback(relay)
    return out


def answer_once(future: Future[A], value: A) -> None:
    """`value` as `future`'s answer, unless it has one already (a timeout and the real answer race)."""
    with contextlib.suppress(InvalidStateError):
        future.set_result(value)
