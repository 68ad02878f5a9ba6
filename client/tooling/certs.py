"""A cluster CA and the certificates it signs, for TLS listeners without a hand-run openssl:
`minikafka certs --out DIR --brokers 1,2,3 --clients alice,bob`.

Each principal gets one PEM keystore (`NAME.pem`: its private key, then its certificate and the
CA's, the layout of Kafka's `ssl.keystore.type=PEM` files) and a `NAME.properties` for Kafka's
tools and ours (`--command-config` for clients; brokers take the ssl.* lines as overrides). The
truststore is `ca.pem`. A broker's certificate names the hosts a client may dial: `localhost`,
`127.0.0.1`, its compose hostname (`brokerN`) and any `--hosts` given."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ORGANIZATION = "minikafka"
VALIDITY = datetime.timedelta(days=825)  # the longest a TLS client accepts for a leaf certificate
CA_NAME = "ca"


@dataclass(frozen=True)
class Issued:
    """What `make_cluster_certs` wrote: the truststore and each principal's keystore."""

    truststore: Path
    keystores: dict[str, Path]


def _name(common_name: str, unit: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _alt_names(hosts: Iterable[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _certificate(subject: x509.Name, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
                 signer: ec.EllipticCurvePrivateKey, ca: bool, hosts: Sequence[str] = ()) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # clocks of containers and hosts differ a little
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
    )
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
            decipher_only=False), critical=True)
    else:
        # A broker is a server to clients and a client to the other brokers: both uses, for everyone.
        builder = builder.add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        if hosts:
            builder = builder.add_extension(x509.SubjectAlternativeName(_alt_names(hosts)), critical=False)
    return builder.sign(signer, hashes.SHA256())


def _properties(keystore: Path, truststore: Path) -> str:
    return "\n".join([
        "security.protocol=SSL",
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={keystore}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={truststore}",
        "",
    ])


def broker_principal_name(broker_id: int) -> str:
    return f"broker-{broker_id}"


def principal(name: str, unit: str) -> str:
    """The principal a broker sees for a certificate made here (Kafka's default principal builder)."""
    return f"User:CN={name},OU={unit},O={ORGANIZATION}"


def super_users(out: Path) -> str:
    """super.users for a cluster of `out`'s certificates: every broker, and the client `admin` if made."""
    names = sorted(p.stem for p in out.glob("broker-*.pem"))
    users = [principal(n, "brokers") for n in names]
    if (out / "admin.pem").exists():
        users.append(principal("admin", "clients"))
    return ";".join(users)


def make_cluster_certs(out: Path, brokers: Sequence[int], clients: Sequence[str],
                       hosts: Sequence[str] = ()) -> Issued:
    """A new CA in `out` (or the one already there) and a keystore per broker and client."""
    out.mkdir(parents=True, exist_ok=True)
    ca_key_path, ca_path = out / f"{CA_NAME}-key.pem", out / f"{CA_NAME}.pem"
    if ca_key_path.exists() and ca_path.exists():
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey), f"{ca_key_path} is not an EC key"
        ca_cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
    else:
        ca_key = _key()
        ca_subject = _name("minikafka cluster CA", "ca")
        ca_cert = _certificate(ca_subject, ca_key, ca_subject, ca_key, ca=True)
        ca_key_path.write_bytes(_pem(ca_key))
        ca_key_path.chmod(0o600)
        ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    keystores: dict[str, Path] = {}
    principals = [(broker_principal_name(b), "brokers", ["localhost", "127.0.0.1", f"broker{b}", *hosts])
                  for b in brokers]
    principals += [(client, "clients", []) for client in clients]
    for name, unit, names in principals:
        key = _key()
        cert = _certificate(_name(name, unit), key, ca_cert.subject, ca_key, ca=False, hosts=names)
        keystore = out / f"{name}.pem"
        keystore.write_bytes(_pem(key) + cert.public_bytes(serialization.Encoding.PEM) + ca_pem)
        keystore.chmod(0o600)
        (out / f"{name}.properties").write_text(_properties(keystore.resolve(), ca_path.resolve()))
        keystores[name] = keystore
    return Issued(ca_path, keystores)
