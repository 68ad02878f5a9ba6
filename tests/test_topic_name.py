"""Kafka's topic-name rules (Topic.validate), with Kafka's TopicTest cases in our words."""

from __future__ import annotations

import pytest

from broker.topic_name import MAX_NAME_LENGTH, InvalidTopicName, validate_topic_name


@pytest.mark.parametrize("name", ["valid", "TOPIC", "nAmEs", "ar6", "VaL1d", "_0-9_.", "...", "__consumer_offsets"])
def test_names_of_ascii_alphanumerics_dots_underscores_and_dashes_are_valid(name: str) -> None:
    validate_topic_name(name)


def test_249_characters_are_allowed_and_250_are_not() -> None:
    assert MAX_NAME_LENGTH == 249
    validate_topic_name("a" * 249)
    with pytest.raises(InvalidTopicName) as refused:
        validate_topic_name("a" * 250)
    assert str(refused.value) == (
        f"Topic name is invalid: the length of '{'a' * 250}' is longer than the max allowed length 249"
    )


def test_the_empty_name_is_refused() -> None:
    with pytest.raises(InvalidTopicName, match=r"^Topic name is invalid: the empty string is not allowed$"):
        validate_topic_name("")


def test_dot_and_dot_dot_are_refused_but_three_dots_are_not() -> None:
    with pytest.raises(InvalidTopicName, match=r"^Topic name is invalid: '\.' is not allowed$"):
        validate_topic_name(".")
    with pytest.raises(InvalidTopicName, match=r"^Topic name is invalid: '\.\.' is not allowed$"):
        validate_topic_name("..")
    validate_topic_name("...")


@pytest.mark.parametrize(
    "char", ["/", "\\", ",", "\u0000", ":", '"', "'", ";", "*", "?", " ", "\t", "\r", "\n", "=", "é", "\u00a0", "٣"]
)
def test_characters_other_than_the_legal_ones_are_refused(char: str) -> None:
    name = f"Is {char}illegal"
    with pytest.raises(InvalidTopicName) as refused:
        validate_topic_name(name)
    assert str(refused.value) == (
        f"Topic name is invalid: '{name}' contains one or more characters other than "
        "ASCII alphanumerics, '.', '_' and '-'"
    )


def test_a_name_too_long_and_badly_formed_gets_the_length_message() -> None:
    with pytest.raises(InvalidTopicName, match="longer than the max allowed length"):
        validate_topic_name("a b" * 100)


def test_length_counts_utf16_code_units_as_java_does() -> None:
    # 125 characters outside the Basic Multilingual Plane are 250 UTF-16 code units: too long, as in Kafka.
    with pytest.raises(InvalidTopicName, match="longer than the max allowed length"):
        validate_topic_name("\U0001f600" * 125)
    with pytest.raises(InvalidTopicName, match="contains one or more characters"):
        validate_topic_name("\U0001f600" * 124)


def test_invalid_topic_name_is_a_value_error_with_kafkas_error_code() -> None:
    assert issubclass(InvalidTopicName, ValueError)
    assert InvalidTopicName.error_code == 17
