"""Experiment tracking and hyperparameter sweeps for the ``ann`` engine.

``sweeps`` composes configs (Hydra), tracks runs (MLflow) and drives sweeps (Optuna);
it imports :mod:`ann`, never the reverse. Importing this package is cheap: the modules
that need MLflow, Optuna or Hydra import them themselves.
"""

__version__ = "0.1.0"
