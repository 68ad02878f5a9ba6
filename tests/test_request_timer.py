"""The request timer: parked requests answered when their time runs out, by one thread."""

from __future__ import annotations

import threading
from concurrent.futures import Future

from broker.api.futures import answer_once
from broker.api.timer import RequestTimer


def test_a_parked_answer_expires_unless_it_comes_in_time() -> None:
    timer = RequestTimer()
    late: Future[str] = Future()
    assert timer.expire(late, 0.05, "timed out").result(timeout=5) == "timed out"
    answer_once(late, "the real answer")  # too late: the timeout stands
    assert late.result() == "timed out"
    in_time: Future[str] = Future()
    timer.expire(in_time, 60, "timed out")
    answer_once(in_time, "the real answer")
    assert in_time.result(timeout=5) == "the real answer"


def test_actions_run_in_the_order_they_fall_due_on_one_thread() -> None:
    timer = RequestTimer()
    ran: list[tuple[str, str]] = []
    done = threading.Event()
    timer.after(0.2, lambda: (ran.append(("second", threading.current_thread().name)), done.set()))
    timer.after(0.05, lambda: ran.append(("first", threading.current_thread().name)))
    assert done.wait(5)
    assert [what for what, _ in ran] == ["first", "second"]
    assert {thread for _, thread in ran} == {"request-timer"}
