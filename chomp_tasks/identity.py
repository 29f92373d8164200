"""Give each worker and ingester process a stable identity and a human-friendly name."""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import os
import re
import socket
from dataclasses import dataclass

NAME_RULE = "1 to 55 ASCII letters, digits, '_', '-' or '.', starting with a letter"
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,54}")
NAME_VARIABLE = "CHOMP_INSTANCE_NAME"
WORDS_RESOURCE = "words.txt"
UID_HEX_CHARS = 32
NAME_SUFFIX_HEX_CHARS = 4


@dataclass(frozen=True)
class Instance:
    """Who a worker is: a uid stable across restarts, its process, host and name."""

    uid: str
    pid: int
    hostname: str
    name: str


def instance_for_node(node_name: str, name_override: str | None = None) -> Instance:
    """Return the identity of the Celery worker whose node name is `node_name`.

    The uid is a hash of the node name, so a worker restarted as "celery@host" keeps its uid,
    its name and therefore its monitor table.

    Raises:
        ValueError: `node_name` is empty, or `name_override` breaks the naming rule.
    """
    if not node_name:
        raise ValueError("node_name: a Celery node name such as 'celery@host' is required")

    uid = uid_for(node_name)
    name = _checked_override(name_override) or name_for_uid(uid)
    return Instance(uid=uid, pid=os.getpid(), hostname=socket.gethostname(), name=name)


def process_instance_name(name_override: str | None = None) -> str:
    """Return the instance name of an ingester process that is not a worker.

    The name derives from the hostname, not the pid, so every process on a host shares it.

    Raises:
        ValueError: `name_override` breaks the naming rule.
    """
    return _checked_override(name_override) or name_for_uid(uid_for(socket.gethostname()))


def uid_for(key: str) -> str:
    """Return the uid of `key`: the same hex string for the same key on every run and host."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:UID_HEX_CHARS]


def name_for_uid(uid: str) -> str:
    """Return a name such as "brisk-otter-3f2a" chosen from the shipped word list by `uid`."""
    adjectives, nouns = word_lists()
    value = int(uid, 16)

    adjective = adjectives[value % len(adjectives)]
    noun = nouns[(value // len(adjectives)) % len(nouns)]
    return f"{adjective}-{noun}-{uid[-NAME_SUFFIX_HEX_CHARS:]}"


@functools.cache
def word_lists() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return the adjectives and nouns shipped in words.txt, read once per process."""
    text = importlib.resources.files("chomp_tasks").joinpath(WORDS_RESOURCE).read_text("ascii")
    sections: dict[str, list[str]] = {}
    current: list[str] = []

    for line in text.split():
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
        else:
            current.append(line)

    return tuple(sections["adjectives"]), tuple(sections["nouns"])


def _checked_override(name_override: str | None) -> str | None:
    """Return the override unchanged, or None when unset; raise when it breaks the rule."""
    if name_override is None or name_override == "":
        return None

    if not NAME_PATTERN.fullmatch(name_override):
        raise ValueError(f"{NAME_VARIABLE}={name_override[:60]!r} is not a valid name: {NAME_RULE}")
    return name_override
