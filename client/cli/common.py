"""What every `minikafka` command shares: its two errors (one line on stderr, exit status 1, or 2
for a bad argument), the console it prints tables to, and the checks of its common arguments.
"""

from __future__ import annotations

import argparse
import logging
import sys

from rich.console import Console

from client.admin import AdminError, parse_bootstrap_servers
from client.security import PLAINTEXT, ClientSecurity, read_command_config
from minikafka_protocol.errors import Errors
from minikafka_protocol.security import SecurityConfigError

# The `commands` of `ArgumentParser.add_subparsers()`, to which each command module adds its own.
Commands = argparse._SubParsersAction


class CliError(Exception):
    """Printed as one line, `minikafka: error: ...`, with exit status 1."""


class UsageError(CliError):
    """A bad argument: printed as CliError, with exit status 2 as argparse's own."""


def rich_console() -> Console:
    # Wide enough that a pipe or a file gets whole rows.
    return Console(width=None if sys.stdout.isatty() else 200, highlight=False)


def check(error_code: int, message: str, what: str) -> None:
    if error_code != Errors.NONE.code:
        name = Errors.for_code(error_code).name
        raise CliError(f"{what}: {name}" + (f": {message}" if message else ""))


def checked_bootstrap(value: str) -> str:
    """A --bootstrap-server value, UsageError if it does not parse."""
    try:
        parse_bootstrap_servers(value)
    except AdminError as e:
        raise UsageError(str(e)) from None
    return value


def client_warnings() -> None:
    """The clients' warnings (retries, metadata failures) to stderr, one line each."""
    logging.basicConfig(level=logging.WARNING, format="minikafka: warning: %(message)s")


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """--bootstrap-server and, as Kafka's tools take it, --command-config."""
    parser.add_argument("--bootstrap-server", required=True, metavar="HOST:PORT[,HOST:PORT]")
    parser.add_argument("--command-config", metavar="FILE",
                        help="client properties: security.protocol=SSL and the ssl.* settings (as Kafka's tools)")


def client_security(args: argparse.Namespace) -> ClientSecurity:
    """The security of a command's clients, from its --command-config file."""
    path = getattr(args, "command_config", None)
    if not path:
        return PLAINTEXT
    try:
        return read_command_config(path)
    except SecurityConfigError as e:
        raise UsageError(f"--command-config {path}: {e}") from None
