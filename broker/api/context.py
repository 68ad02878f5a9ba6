"""Who sent a request, as the transport that received it tells (Kafka's RequestContext)."""

from __future__ import annotations

from dataclasses import dataclass

from minikafka_protocol.security import ANONYMOUS, SecurityProtocol


@dataclass(frozen=True)
class RequestContext:
    """The caller of one request: its principal (what the authorizer checks: `User:` and the
    subject of its TLS certificate, or User:ANONYMOUS), its address as Kafka logs it
    ("/127.0.0.1"), and the listener the request came in on with that listener's protocol."""

    client_host: str = ""
    principal: str = ANONYMOUS
    listener_name: str = "PLAINTEXT"
    security_protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
