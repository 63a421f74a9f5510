"""Errors a user can cause, each with a one-line message.

The command-line entry points print ``str(error)`` on stderr and exit with status 2 for
every :class:`UserError` (and for the engine's :class:`ann.AnnError` input errors); any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the configuration, the data or the environment; ``str()`` is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class ConfigError(UserError):
    """A config key holds a value that is not allowed."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={_show(value)} is not allowed: expected {allowed}")


class TrackingError(UserError):
    """The MLflow tracking store cannot be used (does not answer, refuses, ...)."""


def _show(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_show(v) for v in value) + "]"
    return str(value)
