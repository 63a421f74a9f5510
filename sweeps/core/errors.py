"""Errors a user can cause, each with a one-line message.

The command-line entry points print ``str(error)`` on stderr and exit with status 2 for
every :class:`UserError` (and for the engine's :class:`ann.AnnError` input errors); any
other exception is a bug and keeps its traceback.

Any error said in one line (a tag, a log line, a trial's fail reason) goes through
:func:`one_line` (the text folded onto one line), :func:`first_line` (a multi-line message's
first line) or :func:`root_cause` (the error a chain of ``raise ... from`` started with).
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the configuration, the data or the environment; ``str()`` is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def one_line(error: BaseException, limit: int | None = None, *, typed: bool = False) -> str:
    """``error``'s text on one line, cut to ``limit`` characters; its type's name when it has no
    text. ``typed``: ``ValueError: text``. SQLAlchemy's "(Background on this error ...)" link
    is left out."""
    text = " ".join(str(error).split())
    text = text.split("(Background on this error")[0].strip()
    if limit is not None:
        text = text[:limit]
    name = type(error).__name__
    if not text:
        return name
    return f"{name}: {text}" if typed else text


def first_line(error: BaseException) -> str:
    """The first non-blank line of ``error``'s message (its type's name when it has none)."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def root_cause(error: BaseException, *, context: bool = False) -> BaseException:
    """The error at the bottom of ``error``'s ``__cause__`` chain (``context``: and of ``__context__``)."""
    seen = {id(error)}
    while True:
        below = error.__cause__ or (error.__context__ if context else None)
        if below is None or id(below) in seen:
            return error
        seen.add(id(below))
        error = below


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
