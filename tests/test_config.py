"""KafkaConfig: Kafka's names and defaults, the properties format, environment and overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.config import ConfigError, EndPoint, KafkaConfig, env_name
from minikafka_protocol.properties import parse_properties

REQUIRED = {"broker.id": "1", "zookeeper.connect": "zk:2181"}


def test_defaults_are_kafkas() -> None:
    config = KafkaConfig(REQUIRED)
    assert config.listeners == [EndPoint("PLAINTEXT", "", 9092)]
    assert config.advertised_listeners == config.listeners
    assert config.zookeeper_session_timeout_ms == 18000
    assert config.zookeeper_connection_timeout_ms == 18000  # falls back to the session timeout
    assert config.log_dirs == ["/tmp/kafka-logs"]
    assert config.rack is None


def test_properties_format() -> None:
    text = (
        "# a comment\n"
        "! another\n"
        "broker.id = 3\n"
        "zookeeper.connect: zk1:2181,zk2:2181/kafka\n"
        "log.dirs /data/a,\\\n"
        "   /data/b\n"
        "broker.rack=eu\\=west\n"
    )
    assert parse_properties(text, "server.properties") == {
        "broker.id": "3",
        "zookeeper.connect": "zk1:2181,zk2:2181/kafka",
        "log.dirs": "/data/a,/data/b",
        "broker.rack": "eu=west",
    }


def test_file_then_environment_then_overrides(tmp_path: Path) -> None:
    properties = tmp_path / "server.properties"
    properties.write_text("broker.id=1\nzookeeper.connect=file:2181\nlog.dirs=/file\n")
    environ = {"MINIKAFKA_ZOOKEEPER_CONNECT": "env:2181", "MINIKAFKA_LOG_DIRS": "/env", "PATH": "/bin"}
    config, warnings = KafkaConfig.load(str(properties), ["log.dirs=/override"], environ)
    assert config.broker_id == 1
    assert config.zookeeper_connect == "env:2181"
    assert config.log_dirs == ["/override"]
    assert warnings == []


def test_environment_alone_configures_a_container_broker() -> None:
    environ = {env_name("broker.id"): "7", env_name("zookeeper.connect"): "zk:2181/chroot",
               env_name("zookeeper.session.timeout.ms"): "6000"}
    config, _ = KafkaConfig.load(None, [], environ)
    assert (config.broker_id, config.zookeeper_connect, config.zookeeper_session_timeout_ms) == (
        7, "zk:2181/chroot", 6000,
    )
    assert env_name("zookeeper.session.timeout.ms") == "MINIKAFKA_ZOOKEEPER_SESSION_TIMEOUT_MS"


def test_unknown_environment_variable_is_a_warning_not_an_error() -> None:
    _, warnings = KafkaConfig.load(None, [], {**{env_name(k): v for k, v in REQUIRED.items()},
                                              "MINIKAFKA_BROKER_IDD": "2"})
    assert warnings == ["Ignoring environment variable MINIKAFKA_BROKER_IDD: it names no broker property"]


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"broker.id": "1"}, "Missing required configuration 'zookeeper.connect'"),
        ({**REQUIRED, "broker.id": "-1"}, "Invalid value -1 for configuration broker.id: Value must be at least 0"),
        ({**REQUIRED, "zookeeper.session.timeout.ms": "0"}, "Value must be at least 1"),
        ({**REQUIRED, "listeners": "PLAINTEXT://:70000"}, "port 70000 is out of range"),
        ({**REQUIRED, "listeners": "A://:1,A://:2"}, "each listener must have a different name"),
        ({**REQUIRED, "advertised.listeners": "OTHER://h:1"}, "advertised.listeners names OTHER"),
        ({**REQUIRED, "zookeeper.connect": "zk:2181/kafka/"}, "malformed chroot"),
        ({**REQUIRED, "typo": "1"}, "Unknown configuration 'typo'"),
    ],
)
def test_malformed_properties_are_one_line_errors(props: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        KafkaConfig(props)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_listeners_with_ipv6_and_advertised_hosts() -> None:
    config = KafkaConfig({**REQUIRED, "listeners": "PLAINTEXT://[::1]:9092,INTERNAL://0.0.0.0:0",
                          "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT",
                          "advertised.listeners": "PLAINTEXT://broker1:9092"})
    assert config.listeners == [EndPoint("PLAINTEXT", "::1", 9092), EndPoint("INTERNAL", "0.0.0.0", 0)]
    assert config.listeners[0].connection_string == "PLAINTEXT://[::1]:9092"
    assert config.advertised_listeners == [EndPoint("PLAINTEXT", "broker1", 9092)]
