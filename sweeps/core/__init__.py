"""The bottom layer: the vocabulary (every tag, metric and attribute name), errors, redaction,
names and numbers, storage URLs, locks and faults, MLflow's console settings, database drivers.
Imports nothing of ``sweeps``."""
