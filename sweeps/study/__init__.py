"""The Optuna side: storage, study, claims and workers, the objective, the runner, the parent
run's results, the status.

Imports every layer below (core, config, tracking, training); never cli."""
