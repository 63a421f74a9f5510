"""The Optuna side: storage, locks and claims, the objective, the runner, the parent run's results.

Imports every layer below (core, config, tracking, training); never cli."""
