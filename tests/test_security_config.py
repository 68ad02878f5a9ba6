"""Listeners' security protocols, the inter-broker listener, PEM stores and the certificates of
`minikafka certs`, as the broker and the clients read them."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from kazoo.security import OPEN_ACL_UNSAFE, Permissions

from broker.config import ConfigError, KafkaConfig
from broker.zk.zk_security import ZkSecurity, opens_children
from client.tooling.certs import make_cluster_certs
from minikafka_protocol.security import (
    SecurityConfigError,
    SecurityProtocol,
    endpoint_address,
    load_ssl_stores,
    principal_from_subject,
)

REQUIRED = {"broker.id": "1", "zookeeper.connect": "zk:2181"}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    make_cluster_certs(out, [1, 2], ["alice"], hosts=["kafka.example"])
    return out


def test_the_certificates_chain_to_the_cluster_ca_and_name_their_principals(certs: Path) -> None:
    ca = x509.load_pem_x509_certificate((certs / "ca.pem").read_bytes())
    stores = load_ssl_stores({"ssl.keystore.location": str(certs / "broker-1.pem"),
                              "ssl.truststore.location": str(certs / "ca.pem")})
    assert stores.key is not None and stores.certificate_chain is not None
    broker = x509.load_pem_x509_certificates(stores.certificate_chain)
    assert broker[0].issuer == ca.subject and broker[1] == ca
    assert broker[0].subject.rfc4514_string() == "CN=broker-1,OU=brokers,O=minikafka"
    names = broker[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", "broker1", "kafka.example"} <= set(names.get_values_for_type(x509.DNSName))
    ca.public_key().verify(broker[0].signature, broker[0].tbs_certificate_bytes,  # type: ignore[call-arg]
                           ec.ECDSA(broker[0].signature_hash_algorithm))  # type: ignore[arg-type]
    properties = (certs / "alice.properties").read_text()
    assert "security.protocol=SSL" in properties and f"ssl.keystore.location={certs / 'alice.pem'}" in properties


def test_a_second_run_keeps_the_ca_and_adds_principals(certs: Path) -> None:
    before = (certs / "ca.pem").read_bytes()
    make_cluster_certs(certs, [], ["bob"])
    assert (certs / "ca.pem").read_bytes() == before and (certs / "bob.pem").exists()


def test_an_encrypted_key_is_read_with_ssl_key_password(certs: Path, tmp_path: Path) -> None:
    pem = (certs / "alice.pem").read_bytes()
    cut = pem.index(b"-----BEGIN CERTIFICATE-----")
    key = serialization.load_pem_private_key(pem[:cut], None)
    encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(b"secret"))
    (tmp_path / "alice.pem").write_bytes(encrypted + pem[cut:])
    props = {"ssl.keystore.location": str(tmp_path / "alice.pem"), "ssl.key.password": "secret"}
    assert load_ssl_stores(props).key is not None
    with pytest.raises(SecurityConfigError, match="the private key cannot be read"):
        load_ssl_stores({**props, "ssl.key.password": "wrong"})


@pytest.mark.parametrize(("props", "message"), [
    ({"ssl.keystore.type": "JKS"}, "only PEM stores are supported"),
    ({"ssl.keystore.location": "/no/such.pem"}, "No such file or directory"),
    ({"ssl.keystore.key": "k"}, "must be set together"),
    ({"ssl.truststore.certificates": "not a certificate"}, "no PEM certificate"),
])
def test_bad_stores_are_one_line_errors(props: dict[str, str], message: str) -> None:
    with pytest.raises(SecurityConfigError, match=message) as error:
        load_ssl_stores(props)
    assert "\n" not in str(error.value)


def test_an_ssl_listener_beside_plaintext_with_brokers_speaking_ssl(certs: Path) -> None:
    config = KafkaConfig({
        **REQUIRED, "listeners": "PLAINTEXT://:9092,SSL://:9093", "security.inter.broker.protocol": "SSL",
        "ssl.keystore.location": str(certs / "broker-1.pem"), "ssl.truststore.location": str(certs / "ca.pem"),
        "ssl.client.auth": "required",
    })
    assert config.listener_protocols == {"PLAINTEXT": SecurityProtocol.PLAINTEXT, "SSL": SecurityProtocol.SSL}
    assert (config.inter_broker_listener_name, config.inter_broker_protocol) == ("SSL", SecurityProtocol.SSL)
    assert KafkaConfig(REQUIRED).inter_broker_listener_name == "PLAINTEXT"


@pytest.mark.parametrize(("props", "message"), [
    ({"listeners": "SSL://:9093"}, "inter.broker.listener.name must be a listener name defined in advertised"),
    ({"listeners": "PLAINTEXT://:1,SSL://:2"}, "An SSL listener needs a keystore"),
    ({"listeners": "PLAINTEXT://:1,INTERNAL://:2"}, "No security protocol defined for listener INTERNAL"),
    ({"listener.security.protocol.map": "PLAINTEXT:SASL_SSL"}, "SASL is not implemented"),
    ({"listener.security.protocol.map": "PLAINTEXT:TLS"}, "no security protocol 'TLS'"),
    ({"security.inter.broker.protocol": "SSL", "inter.broker.listener.name": "SSL"}, "Only one of"),
    ({"ssl.client.auth": "requested"}, "cannot ask for a client certificate without requiring one"),
])
def test_security_settings_that_cannot_work_are_refused_at_startup(props: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        KafkaConfig({**REQUIRED, **props})
    assert "\n" not in str(error.value)


def test_principals_and_endpoints() -> None:
    assert principal_from_subject("CN=alice,OU=clients,O=minikafka") == "User:CN=alice,OU=clients,O=minikafka"
    endpoints = ("PLAINTEXT://h:9092", "SSL://[::1]:9093")
    assert endpoint_address(endpoints, "SSL") == ("::1", 9093)
    assert endpoint_address(endpoints, "INTERNAL") is None


def test_zookeeper_set_acl_gives_the_creator_everything_and_the_world_read_but_not_credentials() -> None:
    secure = ZkSecurity(set_acl=True, digest="kafka:secret")
    assert secure.auth_data == [("digest", "kafka:secret")]
    assert [(a.id.scheme, a.perms) for a in secure.acls("/controller")] == [
        ("auth", Permissions.ALL), ("world", Permissions.READ)]
    assert [a.id.scheme for a in secure.acls("/config/users/alice")] == ["auth"]
    assert [a.id.scheme for a in secure.acls("/config/brokers")] == ["auth"]
    assert [a.id.scheme for a in secure.acls("/config/topics/t")] == ["auth", "world"]
    assert ZkSecurity().acls("/controller") == list(OPEN_ACL_UNSAFE)
    assert ZkSecurity(digest="kafka:secret").acls("/controller") == list(OPEN_ACL_UNSAFE)
    assert opens_children(OPEN_ACL_UNSAFE[0]) and not opens_children(secure.acls("/")[1])


@pytest.mark.parametrize(("props", "message"), [
    ({"zookeeper.set.acl": "true"}, "zookeeper.set.acl is true, but no ZooKeeper credentials are configured"),
    ({"zookeeper.auth.digest": "kafka"}, "zookeeper.auth.digest must be user:password"),
    ({"zookeeper.auth.digest": ":secret"}, "zookeeper.auth.digest must be user:password"),
])
def test_zookeeper_login_mistakes_are_config_errors(props: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        KafkaConfig({**REQUIRED, **props})
