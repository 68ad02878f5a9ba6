"""Kafka's security definitions that brokers and clients share: the security protocols, the
principal of a caller (KafkaPrincipal, as the default principal builder makes it), and the PEM
keystore and truststore of `ssl.keystore.type=PEM` read from Kafka's property names.

Only PEM stores are read (JKS and PKCS12 are Java's); the key may be encrypted with
`ssl.key.password`. Per-listener overrides (`listener.name.<name>.ssl.*`) are not supported:
every SSL listener of a broker uses the same stores."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

USER_TYPE = "User"
ANONYMOUS = "User:ANONYMOUS"  # KafkaPrincipal.ANONYMOUS: a caller without a certificate


class SecurityProtocol(StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"


SUPPORTED_PROTOCOLS = (SecurityProtocol.PLAINTEXT, SecurityProtocol.SSL)
# listener.security.protocol.map's default: each protocol's own name is a listener name.
DEFAULT_PROTOCOL_MAP = ",".join(f"{p}:{p}" for p in SecurityProtocol)

_BEGIN_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"


class SecurityConfigError(ValueError):
    """A security setting that cannot work; its message is one line naming the setting."""


def principal_from_subject(subject: str) -> str:
    """Kafka's DefaultKafkaPrincipalBuilder for an SSL caller without ssl.principal.mapping.rules:
    `User:` and the certificate's subject in RFC 2253 form (`CN=alice,OU=clients,O=minikafka`)."""
    return f"{USER_TYPE}:{subject}"


def parse_protocol(name: str, value: str) -> SecurityProtocol:
    try:
        protocol = SecurityProtocol(value.strip().upper())
    except ValueError:
        raise SecurityConfigError(
            f"Invalid value {value} for configuration {name}: no such security protocol "
            f"(one of {', '.join(SecurityProtocol)})") from None
    if protocol not in SUPPORTED_PROTOCOLS:
        raise SecurityConfigError(f"Invalid value {value} for configuration {name}: {protocol} is not supported "
                                  f"(SASL is not implemented; use {' or '.join(SUPPORTED_PROTOCOLS)})")
    return protocol


@dataclass(frozen=True)
class SslStores:
    """A keystore (private key and certificate chain, PEM; none for a client without a
    certificate) and a truststore (CA certificates, PEM; none to trust the system's roots)."""

    key: bytes | None = None
    certificate_chain: bytes | None = None
    trusted: bytes | None = None


def _read(name: str, location: str) -> bytes:
    try:
        return Path(location).read_bytes()
    except OSError as e:
        raise SecurityConfigError(f"Invalid value {location} for configuration {name}: {e.strerror}") from None


def _split_keystore(name: str, pem: bytes) -> tuple[bytes, bytes]:
    """A PEM keystore's private key and its certificates."""
    start = pem.find(_BEGIN_CERTIFICATE)
    key_start = pem.find(b"-----BEGIN ")
    if start < 0 or key_start == start:
        raise SecurityConfigError(f"Invalid value for configuration {name}: a PEM keystore holds a private key, "
                                  "then its certificate chain")
    return pem[:start].strip() + b"\n", pem[start:].strip() + b"\n"


def _unencrypted(name: str, key: bytes, password: str | None) -> bytes:
    """The key as gRPC takes it: unencrypted PKCS#8, decrypted with ssl.key.password if given."""
    from cryptography.hazmat.primitives import serialization

    try:
        loaded = serialization.load_pem_private_key(key, password.encode() if password else None)
    except (ValueError, TypeError) as e:
        raise SecurityConfigError(f"Invalid value for configuration {name}: the private key cannot be read "
                                  f"({e})") from None
    return loaded.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())


def load_ssl_stores(props: Mapping[str, str]) -> SslStores:
    """The stores Kafka's properties name: `ssl.keystore.location` (a PEM file of key and chain)
    or `ssl.keystore.key` with `ssl.keystore.certificate.chain` (the PEM text itself), and
    `ssl.truststore.location` or `ssl.truststore.certificates`."""
    for store in ("keystore", "truststore"):
        kind = (props.get(f"ssl.{store}.type") or "PEM").strip().upper()
        if kind != "PEM":
            raise SecurityConfigError(f"Invalid value {kind} for configuration ssl.{store}.type: "
                                      "only PEM stores are supported")
    location, key_text = props.get("ssl.keystore.location"), props.get("ssl.keystore.key")
    chain_text = props.get("ssl.keystore.certificate.chain")
    if location and (key_text or chain_text):
        raise SecurityConfigError("Only one of ssl.keystore.location and ssl.keystore.key with "
                                  "ssl.keystore.certificate.chain may be set")
    key = chain = None
    if location:
        key, chain = _split_keystore("ssl.keystore.location", _read("ssl.keystore.location", location))
    elif key_text or chain_text:
        if not (key_text and chain_text):
            raise SecurityConfigError("ssl.keystore.key and ssl.keystore.certificate.chain must be set together")
        key, chain = key_text.encode(), chain_text.encode()
    if key is not None:
        key = _unencrypted("ssl.keystore.key" if key_text else "ssl.keystore.location", key,
                           props.get("ssl.key.password"))
    trust_location, trust_text = props.get("ssl.truststore.location"), props.get("ssl.truststore.certificates")
    if trust_location and trust_text:
        raise SecurityConfigError("Only one of ssl.truststore.location and ssl.truststore.certificates may be set")
    trusted = _read("ssl.truststore.location", trust_location) if trust_location else (
        trust_text.encode() if trust_text else None)
    if trusted is not None and _BEGIN_CERTIFICATE not in trusted:
        raise SecurityConfigError("Invalid value for configuration ssl.truststore.location: no PEM certificate in it")
    return SslStores(key, chain, trusted)


def endpoint_address(endpoints: tuple[str, ...] | list[str], listener_name: str) -> tuple[str, int] | None:
    """(host, port) of a broker's endpoint on `listener_name`, from its "NAME://host:port" list."""
    for endpoint in endpoints:
        name, _, address = endpoint.partition("://")
        if name == listener_name:
            host, _, port = address.rpartition(":")
            return host.strip("[]"), int(port)
    return None
