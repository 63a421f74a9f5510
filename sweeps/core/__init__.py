"""The bottom layer: errors, credential redaction, names and numbers, MLflow's console settings,
database drivers. Imports nothing of ``sweeps``."""
