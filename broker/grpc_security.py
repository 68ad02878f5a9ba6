"""TLS for the gRPC transport, from the broker's config: the credentials of an SSL listener, and
the channels this broker opens to the others (the controller's requests, replica fetches, the
controlled shutdown) on the inter-broker listener, presenting its own certificate."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from broker.grpc_options import OPTIONS, target
from minikafka_protocol.security import SecurityProtocol, SslStores, endpoint_address


def server_credentials(stores: SslStores, client_auth: str) -> grpc.ServerCredentials:
    """An SSL listener's credentials: this broker's keystore, and with ssl.client.auth=required
    every client must present a certificate the truststore signed."""
    assert stores.key is not None and stores.certificate_chain is not None
    return grpc.ssl_server_credentials(
        [(stores.key, stores.certificate_chain)], root_certificates=stores.trusted,
        require_client_auth=client_auth == "required",
    )


def channel_credentials(stores: SslStores) -> grpc.ChannelCredentials:
    """A client's side of TLS: trust the truststore's CAs (the system's without one) and present
    the keystore's certificate, if there is one."""
    return grpc.ssl_channel_credentials(stores.trusted, stores.key, stores.certificate_chain)


class InterBrokerChannels:
    """How this broker reaches another: that broker's endpoint on the inter-broker listener
    (`inter.broker.listener.name`, or the listener named after `security.inter.broker.protocol`),
    over that listener's protocol."""

    def __init__(self, listener_name: str = "PLAINTEXT",
                 protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT, stores: SslStores | None = None) -> None:
        self.listener_name = listener_name
        self._credentials = channel_credentials(stores or SslStores()) if protocol is SecurityProtocol.SSL else None

    def address(self, endpoints: Sequence[str], host: str, port: int) -> str:
        """The target of a broker registered with `endpoints`; its first endpoint (`host`,
        `port`) when it registered none on the inter-broker listener (an older registration)."""
        found = endpoint_address(tuple(endpoints), self.listener_name)
        return target(*(found or (host, port)))

    def channel(self, address: str) -> grpc.Channel:
        if self._credentials is None:
            return grpc.insecure_channel(address, options=OPTIONS)
        return grpc.secure_channel(address, self._credentials, options=OPTIONS)
