"""One training run: data preparation, the tracked run, the fit diagnosis, its plots.

Imports ``sweeps.core``, ``sweeps.config`` and ``sweeps.tracking``; never study or cli."""
