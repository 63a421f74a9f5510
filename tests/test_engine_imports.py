"""The engine's import graph: ``import ann`` stays light and pure NumPy."""

import subprocess
import sys


def test_import_ann_loads_neither_pandas_nor_the_sweep_layer():
    # The estimator never imports ann.data (whose CSV loader needs pandas), nor anything of
    # sweeps, MLflow, Optuna or Hydra: a served model's `import ann` stays cheap.
    code = (
        "import sys, ann; "
        "print(sorted(m for m in ('pandas', 'sklearn', 'sweeps', 'mlflow', 'optuna', 'hydra', 'ann.data') "
        "if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
