"""A from-scratch NumPy engine for feed-forward neural networks (multi-layer perceptrons).

    >>> import ann
    >>> model = ann.MLP(hidden_layers=[64, 32], activation="relu", optimizer="adam", lr=1e-3)
    >>> history = model.fit(X_train, y_train, validation_data=(X_val, y_val))  # doctest: +SKIP

The engine imports nothing from MLflow, Optuna or Hydra.
"""

from ann.estimator import MLP, History
from ann.ensemble import Ensemble, load
from ann.exceptions import (
    AnnError,
    DataError,
    InvalidParameterError,
    ModelFileError,
    NonFiniteLossError,
)

__all__ = [
    "MLP",
    "Ensemble",
    "History",
    "load",
    "AnnError",
    "DataError",
    "InvalidParameterError",
    "ModelFileError",
    "NonFiniteLossError",
]
__version__ = "0.1.0"
