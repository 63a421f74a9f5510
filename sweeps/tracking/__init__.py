"""MLflow: the client and runs, links, saved UI views, model logging, reproducibility tags.

Imports ``sweeps.core`` and ``sweeps.config``; never training, study or cli."""
