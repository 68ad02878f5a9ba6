"""Waiting for processes and ports: what every piece of the tooling shares."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class LocalClusterError(Exception):
    """A process of the local cluster could not be started; the message is one line."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_port_run(count: int, host: str = "127.0.0.1") -> int:
    """The first of `count` consecutive free ports, for `--base-port`.

    Drawn below Linux's ephemeral range (32768 up), where outgoing connections take their
    ports, so a neighbour of a free port is not taken a moment later by some client."""
    for _ in range(200):
        first = random.randrange(20000, 32768 - count)
        sockets: list[socket.socket] = []
        try:
            for port in range(first, first + count):
                s = socket.socket()
                sockets.append(s)
                s.bind((host, port))
            return first
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise LocalClusterError(f"no {count} consecutive free ports on {host}")


def wait_until(condition: Callable[[], T], timeout: float, description: str, interval: float = 0.05) -> T:
    """Poll until `condition` returns something truthy; AssertionError naming it after `timeout`.

    A condition raising AssertionError or LocalClusterError ends the wait at once: that is a
    verdict, not a cluster still settling."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except (AssertionError, LocalClusterError):
            raise
        except Exception as e:  # a condition may fail while a cluster settles
            last_error = e
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {description}{detail}")
        time.sleep(interval)
