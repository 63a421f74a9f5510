"""The MLflow pyfunc model of a trained :class:`ann.MLP` or :class:`ann.Ensemble` ("model from code").

This file is logged with every model as its code (MLflow's models-from-code), next to
the network's own files (``model.npz`` + ``model.json`` written by :meth:`ann.MLP.save`,
and ``features.json``) and the pure-NumPy ``ann`` package zipped (``engine/ann.zip``,
imported from the zip unless ``ann`` is already imported), so that a logged model loads
wherever MLflow, NumPy and pandas are installed::

    model = mlflow.pyfunc.load_model("models:/<model_id>")   # or runs:/<run_id>/<run name>
    model.predict(dataframe)                                 # labels (as the data named them) or values
    model.predict(pd.read_csv("new.csv"))                    # a CSV's model: its raw columns
    model.predict(dataframe, params={"output": "proba"})     # class probabilities

and ``mlflow models serve -m models:/<model_id>`` serves it. It must stay importable on
its own: it imports nothing from :mod:`sweeps`.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel

#: ``params={"output": ...}`` values accepted by :meth:`AnnPyfuncModel.predict`.
OUTPUTS = ("label", "proba")


class AnnPyfuncModel(PythonModel):
    """Predicts with the :class:`ann.MLP` (or :class:`ann.Ensemble`) of the model's ``network`` artifact."""

    def load_context(self, context):
        engine = context.artifacts.get("engine")
        if engine and "ann" not in sys.modules:
            sys.path.insert(0, engine)  # the engine version that wrote the model
        import ann  # lazy: from the engine zip just put on sys.path, not this project's
        from ann.data.encoding import TableEncoding  # lazy, as ann

        directory = Path(context.artifacts["network"])
        self.model = ann.load(directory / "model")  # an ann.MLP, or an ann.Ensemble (training.ensemble)
        meta = json.loads((directory / "features.json").read_text())
        self.feature_names = list(meta["feature_names"])
        self.class_names = meta.get("class_names")
        self.label_names = bool(meta.get("label_names"))  # predict class names, not codes
        encoding = meta.get("encoding")  # a CSV's raw columns -> features (ann.data.encoding)
        self.encoding = TableEncoding.from_dict(encoding) if encoding else None

    def predict(self, context, model_input: pd.DataFrame, params=None):
        # The pd.DataFrame hint tells MLflow to validate inputs against the signature only.
        output = (params or {}).get("output", "label")
        if output not in OUTPUTS:
            raise ValueError(f"output={output!r} is not allowed: expected one of {', '.join(OUTPUTS)}")
        X = self._features(model_input)
        if output == "proba":
            if self.model.task_ == "regression":
                raise ValueError("output='proba' is for classifiers; this model does regression")
            names = self.class_names or [str(c) for c in self.model.classes_]
            return pd.DataFrame(self.model.predict_proba(X), columns=names)
        predictions = self.model.predict(X)
        if self.label_names:
            return np.asarray(self.class_names, dtype=object)[np.searchsorted(self.model.classes_, predictions)]
        return predictions

    def _features(self, model_input) -> np.ndarray:
        if isinstance(model_input, dict):
            model_input = pd.DataFrame(model_input)
        if isinstance(model_input, pd.DataFrame):
            frame = model_input.set_axis([str(c) for c in model_input.columns], axis=1)  # a new frame, named by str
            if self.encoding is not None and set(self.encoding.input_names) <= set(frame.columns):
                return self.encoding.transform(frame)
            if set(self.feature_names) <= set(frame.columns):
                return frame[self.feature_names].to_numpy(dtype=np.float64)
            return frame.to_numpy(dtype=np.float64)
        return np.asarray(model_input, dtype=np.float64)


set_model(AnnPyfuncModel())
