"""Who sent a request, as the transport that received it tells (Kafka's RequestContext)."""

from __future__ import annotations

from dataclasses import dataclass

ANONYMOUS = "User:ANONYMOUS"  # Kafka's KafkaPrincipal.ANONYMOUS: a PLAINTEXT listener's caller


@dataclass(frozen=True)
class RequestContext:
    """The caller of one request: its principal (what an authorizer will check), its address as
    Kafka logs it ("/127.0.0.1"), and the listener the request came in on."""

    client_host: str = ""
    principal: str = ANONYMOUS
    listener_name: str = "PLAINTEXT"
