"""An ensemble: fitted networks of one configuration whose outputs are averaged.

Networks trained from different initialisations (and batch orders, dropout masks) make
different errors; the mean of their outputs has the same bias and a smaller variance
(Hansen & Salamon 1990; Lakshminarayanan et al. 2017 for deep networks). For members
``m = 1..M`` with outputs ``a_m`` (class probabilities, or values)::

    a = (1 / M) sum_m a_m

Classes are then ``argmax a`` (``a >= 0.5`` for a binary output), values ``a`` (averaged in
the target's units). The loss of the ensemble is the members' loss taken at ``a`` through
the logits that give it: ``z = log a`` for a softmax (``softmax(log a) = a``),
``z = log a - log(1 - a)`` for a sigmoid, so the cross-entropies read ``-sum_c y_c log a_c``
and ``-y log a - (1 - y) log(1 - a)``; the other losses use ``a`` alone. ``log a`` is
computed from the members' logits ``z_m`` in float64, never from a rounded probability:
``log a = logsumexp_m(log a_m) - log M`` with ``log a_m = z_m - logsumexp(z_m)`` (softmax)
or ``-softplus(-z_m)`` (sigmoid; ``log(1 - a_m) = -softplus(z_m)``), so a confident member's
loss is neither capped nor lost to float32 saturation.

    >>> import numpy as np, ann
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.normal(size=(120, 3)), rng.integers(0, 2, size=120)
    >>> fitted = [ann.MLP(hidden_layers=[8], epochs=3, seed=s) for s in (0, 1)]
    >>> for model in fitted:
    ...     _ = model.fit(X, y)
    >>> ensemble = ann.Ensemble(fitted)
    >>> proba = np.mean([model.predict_proba(X) for model in fitted], axis=0)
    >>> bool(np.allclose(ensemble.predict_proba(X), proba))
    True

Saved as ``<path>.json`` (``"format": "ann-ensemble"``, the member count) beside each
member's own files, ``<path>.member<m>.npz`` + ``.json`` (:mod:`ann.persistence`);
:func:`load` reads either kind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ann.checks import check_y
from ann.estimator import MLP
from ann.exceptions import AnnError, InvalidParameterError, ModelFileError
from ann.scoring import RunningScore, class_codes, forward_all

FORMAT = "ann-ensemble"
VERSION = 1


class Ensemble:
    """Fitted :class:`ann.MLP` members of one task, classes, inputs and target scaling; outputs averaged."""

    def __init__(self, members: Sequence[MLP]) -> None:
        members = list(members)
        if not members or not all(isinstance(m, MLP) and m.network_ is not None for m in members):
            raise InvalidParameterError("members", members, "one or more fitted ann.MLP")
        first = members[0]
        for member in members[1:]:
            same_classes = (member.classes_ is None) == (first.classes_ is None) and (
                first.classes_ is None or np.array_equal(member.classes_, first.classes_))
            if (member.task_, member.n_features_in_, member.loss_, member.output_activation_, member._y_was_1d) != (
                    first.task_, first.n_features_in_, first.loss_, first.output_activation_, first._y_was_1d) \
                    or not same_classes or not _same_scaler(member.y_scaler_, first.y_scaler_):
                raise InvalidParameterError("members", members,
                                            "models of one task, classes, inputs, loss and target scaling")
        self.members = members

    # ------------------------------------------------------------------ what the members share
    @property
    def task_(self) -> str:
        return self.members[0].task_

    @property
    def classes_(self):
        return self.members[0].classes_

    @property
    def n_features_in_(self) -> int:
        return self.members[0].n_features_in_

    @property
    def n_parameters_(self) -> int:
        return sum(member.n_parameters_ for member in self.members)

    # ------------------------------------------------------------------ inference
    def _output(self, X: Any) -> np.ndarray:
        """``a = mean_m a_m``: the members' output activations averaged (float64)."""
        return self._output_and_logits(X)[0]

    def _output_and_logits(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """``a`` and the logits whose output it is, from the members' own logits (float64)."""
        X = self.members[0]._check_X(X)
        outputs, logits = zip(*(forward_all(member.network_, member._inputs(X)) for member in self.members))
        a = np.mean([np.asarray(o, dtype=np.float64) for o in outputs], axis=0)
        z = [np.asarray(z_m, dtype=np.float64) for z_m in logits]
        log_m = np.log(len(z))
        activation = self.members[0].output_activation_
        if activation == "softmax":
            return a, _logsumexp([z_m - _logsumexp(z_m, axis=1)[:, None] for z_m in z], axis=0) - log_m
        if activation == "sigmoid":
            log_a = _logsumexp([-np.logaddexp(0.0, -z_m) for z_m in z], axis=0) - log_m
            log_not_a = _logsumexp([-np.logaddexp(0.0, z_m) for z_m in z], axis=0) - log_m
            return a, log_a - log_not_a
        return a, a

    def predict(self, X: Any) -> np.ndarray:
        """Class labels (classification) or values (regression) of the averaged outputs."""
        first, a = self.members[0], self._output(X)
        if self.task_ == "regression":
            values = first.y_scaler_.inverse_transform(a) if first.y_scaler_ is not None else a
            return values[:, 0] if first._y_was_1d else values
        return self.classes_[class_codes(self.task_, a)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """The members' class probabilities averaged, one column per class in ``classes_`` order."""
        if self.task_ == "regression":
            raise AnnError("predict_proba is for classifiers; this model does regression")
        a = self._output(X)
        return np.hstack([1.0 - a, a]) if self.task_ == "binary" else a

    def evaluate(self, X: Any, y: Any) -> dict[str, float]:
        """Loss and metrics of the averaged outputs on ``(X, y)``, as :meth:`ann.MLP.evaluate` names them."""
        first = self.members[0]
        X = first._check_X(X)
        a, z = self._output_and_logits(X)
        targets = first._targets(check_y(y, X.shape[0])).astype(np.float64)
        result = {"loss": first._loss.value(targets, z, a)}
        score = RunningScore(self.task_, first.y_scaler_)
        score.add(targets, a)
        result.update(score.result())
        return result

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> tuple[str, ...]:
        """Write ``<path>.json`` and each member's ``<path>.member<m>.npz`` + ``.json``; the paths written."""
        stem = _stem(path)
        written: list[str] = []
        for index, member in enumerate(self.members, start=1):
            written += member.save(stem.with_name(f"{stem.name}.member{index}"))
        description = stem.with_name(stem.name + ".json")
        description.write_text(json.dumps({"format": FORMAT, "version": VERSION, "members": len(self.members)},
                                          indent=2) + "\n")
        return (str(description), *written)

    @classmethod
    def load(cls, path) -> "Ensemble":
        """The ensemble written by :meth:`save` at ``path``."""
        stem = _stem(path)
        meta = _description(stem.with_name(stem.name + ".json"))
        if meta.get("format") != FORMAT or meta.get("version") != VERSION:
            raise ModelFileError(f"{stem}.json is not an {FORMAT} (version {VERSION}) description")
        count = meta.get("members")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ModelFileError(f"{stem}.json: members={count!r}; expected a positive integer")
        return cls([MLP.load(stem.with_name(f"{stem.name}.member{index}")) for index in range(1, count + 1)])


def _logsumexp(x, axis: int) -> np.ndarray:
    """``log sum exp x`` along ``axis``, shifted by the maximum (finite for any finite ``x``)."""
    x = np.asarray(x, dtype=np.float64)
    peak = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(peak, axis=axis) + np.log(np.sum(np.exp(x - peak), axis=axis))


def _same_scaler(one, other) -> bool:
    if one is None or other is None:
        return one is other
    return np.array_equal(one.mean, other.mean) and np.array_equal(one.scale, other.scale)


def load(path) -> MLP | Ensemble:
    """The model saved at ``path``: an :class:`Ensemble` or an :class:`ann.MLP`."""
    stem = _stem(path)
    meta = _description(stem.with_name(stem.name + ".json"))
    return Ensemble.load(stem) if meta.get("format") == FORMAT else MLP.load(stem)


def _stem(path) -> Path:
    path = Path(os.fspath(path))
    return path.with_suffix("") if path.suffix in (".npz", ".json") else path


def _description(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelFileError(f"model file {path} does not exist") from None
    except (OSError, ValueError) as error:
        raise ModelFileError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path} is not a model description")
    return meta
