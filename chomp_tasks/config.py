"""Settings of chomp_tasks, read once from the CHOMP_* environment variables."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit, urlunsplit

from chomp_tasks.errors import ConfigError

DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_DATABASE_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/chomp"
DEFAULT_IPV4_URL = "https://api4.ipify.org/?format=json"
DEFAULT_IPV6_URL = "https://api6.ipify.org/?format=json"
DEFAULT_GEO_URL = "http://ip-api.com/json/{ip}"

SENDERS = ("process", "thread")
_KEY_PREFIX_RULE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


@dataclass(frozen=True)
class Settings:
    """Everything chomp_tasks reads from its environment, validated and cast."""

    broker_url: str = DEFAULT_BROKER_URL
    redis_url: str = DEFAULT_REDIS_URL
    database_url: str = DEFAULT_DATABASE_URL
    instance_name: str | None = None
    queue: str = "chomp_tasks"
    redis_prefix: str = "chomp:"
    vitals_interval_seconds: float = 30.0
    geo_refresh_seconds: float = 21600.0
    ipv4_url: str = DEFAULT_IPV4_URL
    ipv6_url: str = DEFAULT_IPV6_URL
    geo_url: str = DEFAULT_GEO_URL
    batch_size: int = 1000
    batch_age_seconds: float = 0.25
    buffer_size: int = 100_000
    # A dead worker's messages come back within this plus one sweep (at most 10 s): under the
    # two minutes an operator expects, well above the time a batch takes to store.
    visibility_timeout_seconds: float = 90.0
    celery_config_module: str = ""
    sender: str = "process"

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> Settings:
        """Build settings from a mapping shaped like os.environ.

        Raises:
            ConfigError: a variable is set to a value that cannot be used; the message names it.
        """
        reader = _Reader(env)
        settings = cls(
            broker_url=reader.text("CHOMP_BROKER_URL", DEFAULT_BROKER_URL),
            redis_url=reader.text("CHOMP_REDIS_URL", DEFAULT_REDIS_URL),
            database_url=_with_driver(reader.text("CHOMP_DATABASE_URL", DEFAULT_DATABASE_URL)),
            instance_name=env.get("CHOMP_INSTANCE_NAME") or None,
            queue=reader.text("CHOMP_QUEUE", "chomp_tasks"),
            redis_prefix=reader.text("CHOMP_REDIS_PREFIX", "chomp:"),
            vitals_interval_seconds=reader.number("CHOMP_VITALS_INTERVAL", 30.0, minimum=1.0),
            geo_refresh_seconds=reader.number("CHOMP_GEO_REFRESH", 21600.0, minimum=60.0),
            ipv4_url=reader.text("CHOMP_IPV4_URL", DEFAULT_IPV4_URL),
            ipv6_url=reader.text("CHOMP_IPV6_URL", DEFAULT_IPV6_URL),
            geo_url=reader.text("CHOMP_GEO_URL", DEFAULT_GEO_URL),
            batch_size=int(reader.number("CHOMP_BATCH_SIZE", 1000, minimum=1, maximum=5000)),
            batch_age_seconds=reader.number("CHOMP_BATCH_AGE", 0.25, minimum=0.01, maximum=5.0),
            buffer_size=int(reader.number("CHOMP_BUFFER_SIZE", 100_000, minimum=1000)),
            visibility_timeout_seconds=reader.number("CHOMP_VISIBILITY_TIMEOUT", 90.0, minimum=2.0),
            celery_config_module=env.get("CHOMP_CELERY_CONFIG", "").strip(),
            sender=reader.text("CHOMP_SENDER", "process"),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse combinations of values that cannot work together."""
        if not _KEY_PREFIX_RULE.match(self.redis_prefix):
            raise ConfigError(
                f"CHOMP_REDIS_PREFIX={self.redis_prefix!r} must be 1 to 64 letters, digits or _.:-"
            )
        if self.sender not in SENDERS:
            raise ConfigError(
                f"CHOMP_SENDER={self.sender!r} must be one of {', '.join(SENDERS)}: "
                "process publishes through a relay process, thread on a thread of the ingester"
            )
        if "{ip}" not in self.geo_url:
            raise ConfigError(f"CHOMP_GEO_URL={self.geo_url!r} must contain the placeholder {{ip}}")
        if not self.database_url.startswith("postgresql"):
            raise ConfigError(
                f"CHOMP_DATABASE_URL={mask_url(self.database_url)!r} must be a PostgreSQL URL, "
                "such as postgresql+psycopg2://user@host:5432/chomp"
            )


class _Reader:
    """Read and cast single variables, naming the variable in every error."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, name: str, default: str) -> str:
        value = self.env.get(name, "").strip()
        return value or default

    def number(
        self, name: str, default: float, minimum: float, maximum: float | None = None
    ) -> float:
        raw = self.env.get(name, "").strip()
        if not raw:
            return default

        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a number") from None
        if value != value or value < minimum or (maximum is not None and value > maximum):
            limit = f"between {minimum:g} and {maximum:g}" if maximum else f"at least {minimum:g}"
            raise ConfigError(f"{name}={raw!r} must be a number {limit}")
        return value


def _with_driver(url: str) -> str:
    """Name psycopg2, the driver chomp_tasks installs, in a URL that names none.

    SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3, which is not a dependency.
    """
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            return "postgresql+psycopg2://" + url[len(bare) :]
    return url


def mask_url(url: str) -> str:
    """Return the URL with any password replaced by ***, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url

    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


@cache
def get_settings() -> Settings:
    """Return the settings of this process, read from os.environ on first use."""
    return Settings.from_mapping(os.environ)
