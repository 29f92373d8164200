import os
import socket
import subprocess
import sys

import pytest

from chomp_tasks.identity import (
    NAME_PATTERN,
    instance_for_node,
    name_for_uid,
    process_instance_name,
    uid_for,
    word_lists,
)


def test_same_node_name_gives_same_uid_and_name_in_another_process() -> None:
    here = instance_for_node("celery@host-a")
    code = (
        "from chomp_tasks.identity import instance_for_node as f; "
        "i = f('celery@host-a'); print(i.uid, i.name)"
    )
    there = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()

    assert there == [here.uid, here.name]


def test_different_node_names_give_different_uids_and_names() -> None:
    first = instance_for_node("celery@host-a")
    second = instance_for_node("celery@host-b")

    assert first.uid != second.uid
    assert first.name != second.name


def test_instance_carries_this_process_and_host() -> None:
    instance = instance_for_node("celery@host-a")

    assert instance.pid == os.getpid()
    assert instance.hostname == socket.gethostname()


def test_generated_names_follow_the_naming_rule() -> None:
    for index in range(2000):
        name = name_for_uid(uid_for(f"celery@node-{index}"))

        assert NAME_PATTERN.fullmatch(name), name
        assert name.count("-") == 2


def test_generated_names_spread_over_the_word_list() -> None:
    uids = [uid_for(f"celery@node-{index}") for index in range(500)]
    word_pairs = {name_for_uid(uid).rsplit("-", 1)[0] for uid in uids}

    assert len(word_pairs) > 400


def test_word_list_holds_hundreds_of_plain_lowercase_words() -> None:
    adjectives, nouns = word_lists()

    assert len(adjectives) >= 100
    assert len(nouns) >= 100
    for word in adjectives + nouns:
        assert word.isascii() and word.isalpha() and word.islower(), word


def test_override_replaces_the_generated_name() -> None:
    instance = instance_for_node("celery@host-a", name_override="chomp-worker-01")

    assert instance.name == "chomp-worker-01"
    assert instance.uid == instance_for_node("celery@host-a").uid


@pytest.mark.parametrize("bad", ["1worker", "has space", "a" * 56, "émile", "-lead", "ok\n"])
def test_bad_override_is_refused_naming_the_variable_and_rule(bad: str) -> None:
    with pytest.raises(ValueError, match="CHOMP_INSTANCE_NAME") as caught:
        instance_for_node("celery@host-a", name_override=bad)

    assert "starting with a letter" in str(caught.value)


def test_longest_valid_override_is_accepted() -> None:
    assert process_instance_name("a" * 55) == "a" * 55


def test_empty_node_name_is_refused() -> None:
    with pytest.raises(ValueError, match="node_name"):
        instance_for_node("")


def test_process_name_is_stable_for_the_host_and_follows_the_rule() -> None:
    name = process_instance_name()

    assert name == process_instance_name()
    assert name == name_for_uid(uid_for(socket.gethostname()))
    assert NAME_PATTERN.fullmatch(name)


def test_process_name_override_is_checked() -> None:
    assert process_instance_name("ingester.eth_1") == "ingester.eth_1"
    with pytest.raises(ValueError, match="CHOMP_INSTANCE_NAME"):
        process_instance_name("9lives")
