"""Exceptions raised by the engine.

Every error caused by a user's input derives from :class:`AnnError` and carries a
one-line message that names the offending argument, its value and what is allowed,
so that command-line front ends can print ``str(error)`` and exit without a traceback.
"""

from __future__ import annotations


class AnnError(Exception):
    """Base class of every error the engine raises on purpose."""


class InvalidParameterError(AnnError, ValueError):
    """A constructor or ``fit`` argument is outside its allowed range or choices."""

    def __init__(self, name: str, value: object, allowed: str) -> None:
        self.name = name
        self.value = value
        self.allowed = allowed
        super().__init__(f"{name}={value!r} is not allowed: expected {allowed}")


class DataError(AnnError, ValueError):
    """Input data (arrays, CSV files, IDX files) cannot be used as given."""


class ModelFileError(AnnError, ValueError):
    """A saved model file is missing, malformed, or does not match its architecture."""


class NonFiniteLossError(AnnError, FloatingPointError):
    """The training loss became NaN or infinite; training stopped at once.

    Attributes:
        epoch: the 1-based epoch during which the loss stopped being finite.
        value: the offending loss value (``nan``, ``inf`` or ``-inf``).
    """

    def __init__(self, epoch: int, value: float) -> None:
        self.epoch = epoch
        self.value = value
        super().__init__(f"training loss became non-finite ({value}) in epoch {epoch}")
