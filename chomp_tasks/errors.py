"""Every exception chomp_tasks raises on purpose."""


class ChompError(Exception):
    """Base class of every error chomp_tasks raises on purpose."""


class ConfigError(ChompError):
    """A CHOMP_* environment variable holds a value that cannot be used."""


class InvalidName(ChompError, ValueError):
    """A resource or instance name breaks the naming rule, or collides with another name."""


class InvalidRecord(ChompError, ValueError):
    """A vitals record is missing a field, has an unknown one, or holds a value out of range."""


class UnknownMonitor(ChompError, LookupError):
    """A monitor name was asked for that no worker has stored yet."""


class BenchError(ChompError):
    """A step of `chomp-tasks bench` failed; the message says which."""


class PublishFailed(ChompError):
    """A batch of records could not be handed to the broker; the sender keeps it and retries."""


class StorageUnavailable(ChompError):
    """PostgreSQL could not be reached or refused the operation."""


class InvalidQuery(ChompError, ValueError):
    """A read of stored rows has a malformed date, an unknown interval, or an empty time range."""


class TooManyRows(ChompError):
    """A read of stored rows would return more rows than the cap; the range must be narrowed."""
