"""How a client speaks to the brokers: plaintext or TLS, as Kafka's client properties say
(`security.protocol`, `ssl.keystore.location`, `ssl.truststore.location`, ... in the file every
`minikafka` command takes as `--command-config`), or as kafka-python's keyword arguments say
(`security_protocol`, `ssl_cafile`, `ssl_certfile`, `ssl_keyfile`, `ssl_password`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from minikafka_protocol.properties import PropertiesError, read_properties
from minikafka_protocol.security import (
    SecurityConfigError,
    SecurityProtocol,
    SslStores,
    load_ssl_stores,
    parse_protocol,
)

log = logging.getLogger(__name__)

# The client properties read here; Kafka's tools accept (and ignore) every other client setting.
SECURITY_PROPERTIES = (
    "security.protocol", "ssl.keystore.type", "ssl.keystore.location", "ssl.keystore.key",
    "ssl.keystore.certificate.chain", "ssl.key.password", "ssl.truststore.type", "ssl.truststore.location",
    "ssl.truststore.certificates",
)


@dataclass(frozen=True)
class ClientSecurity:
    protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
    stores: SslStores = field(default_factory=SslStores)

    @classmethod
    def from_properties(cls, props: Mapping[str, str]) -> ClientSecurity:
        """From Kafka's client properties; raises SecurityConfigError with a one-line message."""
        protocol = parse_protocol("security.protocol", props.get("security.protocol", "PLAINTEXT"))
        stores = load_ssl_stores({k: v for k, v in props.items() if k.startswith("ssl.")})
        return cls(protocol, stores)

    @classmethod
    def from_options(cls, security_protocol: str = "PLAINTEXT", ssl_cafile: str | None = None,
                     ssl_certfile: str | None = None, ssl_keyfile: str | None = None,
                     ssl_password: str | None = None) -> ClientSecurity:
        """From kafka-python's names: a CA file, and a certificate with its key (one PEM file
        holding both, as `minikafka certs` writes, may be given as either or both)."""
        props = {"security.protocol": security_protocol}
        if ssl_cafile:
            props["ssl.truststore.location"] = ssl_cafile
        if ssl_password:
            props["ssl.key.password"] = ssl_password
        certfile, keyfile = ssl_certfile or ssl_keyfile, ssl_keyfile or ssl_certfile
        if certfile and keyfile and certfile == keyfile:
            props["ssl.keystore.location"] = certfile
        elif certfile and keyfile:
            props["ssl.keystore.key"] = Path(keyfile).read_text()
            props["ssl.keystore.certificate.chain"] = Path(certfile).read_text()
        return cls.from_properties(props)

    def channel(self, address: str, options: Sequence[tuple[str, object]]) -> grpc.Channel:
        if self.protocol is SecurityProtocol.PLAINTEXT:
            return grpc.insecure_channel(address, options=options)
        credentials = grpc.ssl_channel_credentials(self.stores.trusted, self.stores.key, self.stores.certificate_chain)
        return grpc.secure_channel(address, credentials, options=options)


PLAINTEXT = ClientSecurity()


def read_command_config(path: str) -> ClientSecurity:
    """A `--command-config` file: Java properties, of which the security settings count."""
    try:
        props = read_properties(path)
    except PropertiesError as e:
        raise SecurityConfigError(str(e)) from None
    return ClientSecurity.from_properties({k: v for k, v in props.items() if k in SECURITY_PROPERTIES})
