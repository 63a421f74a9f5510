"""``ann.MLP``: a multi-layer perceptron estimator in the style of scikit-learn.

``fit`` trains with mini-batch gradient descent: ``batch_size`` equal to the training set
size is batch gradient descent, ``1`` is stochastic gradient descent (one sample per
update), anything between is mini-batch. The training set is reshuffled every epoch from
the seeded generator.

Per epoch the history records, for the training set, the mean over that epoch's batches
(as Keras and scikit-learn report them: with dropout active, weights changing during the
epoch) and, for the validation set, one evaluation at the end of the epoch:

* ``train_loss`` / ``val_loss`` -- the training loss plus the L2 penalty ``l2/2 * sum(W^2)``
  on the training side (regression losses are in standardised target units when
  ``standardize`` is on);
* classification: ``train_accuracy`` / ``val_accuracy``;
* regression: ``train_mae``, ``train_rmse``, ``train_r2`` and the ``val_`` ones, in the
  target's own units;
* ``lr`` -- the learning rate the epoch used (the ``lr_schedule`` sets it per epoch).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ann import params as P
from ann.activations import make_activation
from ann.exceptions import AnnError, DataError, InvalidParameterError, NonFiniteLossError
from ann.losses import make_loss
from ann.metrics import accuracy, regression_metrics
from ann.network import Network
from ann.optimizers import make_optimizer
from ann.persistence import load_model, save_model
from ann.preprocessing import Standardizer, one_hot
from ann.schedules import make_schedule

Callback = Callable[[int, dict], Any]

#: Activations whose usual initialisation is He; the rest get Xavier/Glorot.
_RELU_FAMILY = {"relu", "leaky_relu", "rrelu", "elu", "gelu", "swish"}
#: Rows per forward pass when evaluating or predicting (bounds memory on big sets).
_EVAL_CHUNK = 8192


@dataclass
class History:
    """What ``fit`` returns: per-epoch metrics and how training ended.

    Attributes:
        history: metric name -> one value per epoch run (``train_loss``, ``val_loss``, ...).
        epochs: the number of epochs run.
        best_epoch: 1-based epoch with the lowest monitored loss (``val_loss`` when there is
            validation data, else ``train_loss``).
        stopped_early: True if early stopping or a callback ended training before ``epochs``.
        stop_reason: ``"early_stopping"``, ``"callback"`` or ``None``.
        epoch_seconds: wall time of each epoch (kept out of ``history``, which is
            bit-for-bit reproducible for a seed).
        fit_seconds: wall time of the whole ``fit``.
    """

    history: dict[str, list[float]] = field(default_factory=dict)
    epochs: int = 0
    best_epoch: int = 0
    stopped_early: bool = False
    stop_reason: str | None = None
    epoch_seconds: list[float] = field(default_factory=list)
    fit_seconds: float = 0.0

    @property
    def monitor(self) -> str:
        return "val_loss" if "val_loss" in self.history else "train_loss"


class MLP:
    """A feed-forward neural network for regression, binary or multiclass classification.

    Every argument is checked against :data:`ann.params.PARAMETERS`; a bad value raises
    :class:`~ann.exceptions.InvalidParameterError` naming it and what is allowed.

    Args:
        hidden_layers: widths of the hidden layers; ``[]`` is a perceptron.
        activation: hidden activation (step, sigmoid, tanh, relu, leaky_relu, rrelu, swish,
            elu, gelu, linear).
        task: ``auto`` infers it from ``y``: floating-point targets are regression; integer,
            boolean or string labels are binary (2 classes) or multiclass.
        output_activation: default from the task: linear, sigmoid, softmax.
        loss: default from the task: mse, binary_crossentropy, categorical_crossentropy.
        init: ``auto`` (He for the ReLU family, Xavier otherwise), ``small``, ``xavier``, ``he``.
        init_scale: standard deviation of ``small`` initial weights.
        optimizer: sgd, momentum, nesterov, adam, adamw, rmsprop; ``lr`` is its (peak)
            learning rate and ``momentum``, ``beta1``, ``beta2``, ``rho``, ``eps``,
            ``weight_decay`` its settings (:mod:`ann.optimizers`).
        weight_decay: decoupled weight decay of adamw, sgd, momentum and nesterov
            (``theta -= lr * weight_decay * theta`` on the weights every step).
        clip_norm: rescale the gradient to this global L2 norm when it is longer
            (Pascanu et al. 2013); ``None``: no clipping.
        lr_schedule: constant, step, exponential, cosine, one_cycle, plateau: how the
            learning rate changes per epoch (:mod:`ann.schedules`), with ``warmup_epochs``,
            ``step_size``, ``gamma``, ``min_lr``, ``pct_start``, ``div_factor``,
            ``final_div_factor``, ``plateau_factor``, ``plateau_patience`` and
            ``plateau_threshold`` (each schedule reads its own, see
            :data:`ann.params.SCHEDULE_SETTINGS`).
        batch_size: samples per update (1 = SGD, training set size = batch GD).
        epochs: maximum passes over the training set.
        l2: L2 weight decay; adds ``l2/2 * sum(W^2)`` over weights (not biases) to the loss.
        dropout: probability of zeroing a hidden unit during training (inverted dropout).
        leaky_slope: the slope of ``leaky_relu`` below 0.
        rrelu_lower: the lowest random slope of ``rrelu``.
        rrelu_upper: the highest random slope of ``rrelu``.
        elu_alpha: the alpha of ``elu``.
        early_stopping: stop when the monitored loss has not improved by ``min_delta`` for
            ``patience`` epochs; ``restore_best_weights`` then rolls back to the best epoch.
        standardize: standardise X (and regression targets) with statistics of the
            training data; the statistics are part of the model.
        shuffle: reshuffle the training set every epoch.
        dtype: ``float32`` (default, fast) or ``float64``.
        seed: seeds initialisation, shuffling, dropout and rrelu; same seed, same history.
    """

    def __init__(
        self,
        hidden_layers: Sequence[int] = (32,),
        activation: str = "relu",
        task: str = "auto",
        output_activation: str | None = None,
        loss: str | None = None,
        init: str = "auto",
        init_scale: float = 0.01,
        optimizer: str = "adam",
        lr: float = 1e-3,
        momentum: float = 0.9,
        beta1: float = 0.9,
        beta2: float = 0.999,
        rho: float = 0.9,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
        lr_schedule: str = "constant",
        warmup_epochs: int = 0,
        step_size: int = 10,
        gamma: float = 0.5,
        min_lr: float = 0.0,
        pct_start: float = 0.3,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        plateau_factor: float = 0.1,
        plateau_patience: int = 5,
        plateau_threshold: float = 1e-4,
        batch_size: int = 32,
        epochs: int = 100,
        l2: float = 0.0,
        dropout: float = 0.0,
        leaky_slope: float = 0.01,
        rrelu_lower: float = 1.0 / 8.0,
        rrelu_upper: float = 1.0 / 3.0,
        elu_alpha: float = 1.0,
        early_stopping: bool = False,
        patience: int = 10,
        min_delta: float = 0.0,
        restore_best_weights: bool = True,
        standardize: bool = True,
        shuffle: bool = True,
        dtype: str = "float32",
        seed: int | None = 0,
    ) -> None:
        arguments = dict(locals())
        del arguments["self"]
        for name, value in P.check_all(arguments).items():
            setattr(self, name, value)
        if self.task != "auto":
            P.check_task_fit(self.task, self.loss, self.output_activation)
        self.network_: Network | None = None

    # ------------------------------------------------------------------ parameters
    def get_params(self) -> dict[str, Any]:
        """The constructor arguments (``hidden_layers`` as a list)."""
        values = {name: getattr(self, name) for name in P.PARAMETERS_DEFAULTS}
        values["hidden_layers"] = list(values["hidden_layers"])
        return values

    def __repr__(self) -> str:
        changed = {
            k: v for k, v in self.get_params().items()
            if v != P.PARAMETERS_DEFAULTS[k] and not (k == "hidden_layers" and tuple(v) == (32,))
        }
        return "MLP(" + ", ".join(f"{k}={v!r}" for k, v in changed.items()) + ")"

    @property
    def n_parameters_(self) -> int:
        return self._network().n_parameters

    def parameters(self) -> list[np.ndarray]:
        """The live weight and bias arrays ``[W1, b1, W2, b2, ...]`` (views into the model)."""
        net = self._network()
        return [array for pair in zip(net.W, net.b) for array in pair]

    # ------------------------------------------------------------------ data preparation
    def _check_X(self, X: Any, name: str = "X") -> np.ndarray:
        """A 2-D array of finite numbers (floating-point input keeps its dtype: no copy)."""
        X = np.asarray(X)
        if X.dtype.kind not in "f":
            try:
                X = X.astype(np.float64)
            except (TypeError, ValueError):
                raise DataError(f"{name} must hold numbers only, got dtype {X.dtype}") from None
        if X.ndim != 2:
            raise DataError(f"{name} must be 2-D (samples x features), got shape {X.shape}")
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise DataError(f"{name} is empty (shape {X.shape})")
        # One reduction in X's own dtype is enough when all is well; locate the culprit only
        # when it is not (the sum may overflow to inf on finite data: the full check then
        # clears it).
        with np.errstate(over="ignore", invalid="ignore"):
            suspicious = not np.isfinite(X.sum())
        if suspicious:
            bad = ~np.isfinite(X)
            if bad.any():
                row, col = np.argwhere(bad)[0]
                raise DataError(
                    f"{name} holds {int(bad.sum())} NaN or infinite value(s), first at row {row}, "
                    f"column {col} ({X[row, col]}); only finite numbers are allowed"
                )
        if self.network_ is not None and X.shape[1] != self.n_features_in_:
            raise DataError(
                f"{name} has {X.shape[1]} features; the model was fitted with {self.n_features_in_}"
            )
        return X

    def _check_y(self, y: Any, n: int, name: str = "y", x_name: str = "X") -> np.ndarray:
        y = np.asarray(y)
        if y.ndim == 0 or y.shape[0] != n:
            raise DataError(
                f"{x_name} and {name} have different lengths: {n} samples but {name} has "
                f"{y.shape[0] if y.ndim else 'a scalar'}"
            )
        if y.dtype.kind in "fc" and not np.all(np.isfinite(y)):
            raise DataError(f"{name} holds NaN or infinite values; only finite targets are allowed")
        if y.dtype.kind == "O":
            if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in y.ravel()):
                raise DataError(f"{name} holds missing values")
        return y

    def _infer_task(self, y: np.ndarray) -> str:
        if self.task != "auto":
            return self.task
        if y.dtype.kind == "f":
            return "regression"
        return "binary" if len(np.unique(y)) == 2 else "multiclass"

    def _setup(self, X: np.ndarray, y: np.ndarray, x_scaler: Standardizer | None = None) -> None:
        """Fix the task, targets encoding, preprocessing and a freshly initialised network.

        ``x_scaler``: the fitted scaler ``X`` is already standardised by (else one is
        fitted on ``X`` when ``standardize`` is on).
        """
        task = self._infer_task(y)
        loss = self.loss or P.LOSSES_FOR_TASK[task][0]
        output = self.output_activation or P.OUTPUT_ACTIVATIONS_FOR_TASK[task][0]
        P.check_task_fit(task, loss, output)
        self.task_, self.loss_, self.output_activation_ = task, loss, output

        if task == "regression":
            if y.dtype.kind not in "biuf":
                raise DataError(f"regression targets must be numbers, got dtype {y.dtype}")
            self.classes_ = None
            self._y_was_1d = y.ndim == 1
            n_outputs = 1 if y.ndim == 1 else y.shape[1]
            Y = y.reshape(len(y), -1).astype(np.float64)
            self.y_scaler_ = Standardizer().fit(Y) if self.standardize else None
        else:
            if y.ndim != 1:
                raise DataError(f"classification targets must be 1-D labels, got shape {y.shape}")
            self.classes_ = np.unique(y)
            if len(self.classes_) < 2:
                raise DataError(
                    f"y has a single class ({self.classes_[0].item()!r}); classification needs at least 2"
                )
            if task == "binary" and len(self.classes_) != 2:
                raise InvalidParameterError(
                    "task", task, f"'multiclass' for {len(self.classes_)} classes"
                )
            self.y_scaler_ = None
            n_outputs = 1 if task == "binary" else len(self.classes_)

        self.n_features_in_ = X.shape[1]
        if x_scaler is None and self.standardize:
            x_scaler = Standardizer().fit(X)
        self.x_scaler_ = x_scaler
        self._build(n_outputs)

    def _build(self, n_outputs: int) -> None:
        streams = np.random.SeedSequence(self.seed).spawn(4)
        init_rng, self._shuffle_rng, dropout_rng, rrelu_rng = map(np.random.default_rng, streams)
        settings = dict(
            leaky_slope=self.leaky_slope,
            rrelu_lower=self.rrelu_lower,
            rrelu_upper=self.rrelu_upper,
            elu_alpha=self.elu_alpha,
            rng=rrelu_rng,
        )
        hidden = [make_activation(self.activation, **settings) for _ in self.hidden_layers]
        init = self.init
        if init == "auto":
            init = "he" if self.activation in _RELU_FAMILY else "xavier"
        self.network_ = Network(
            [self.n_features_in_, *self.hidden_layers, n_outputs],
            hidden + [make_activation(self.output_activation_)],
            dtype=np.dtype(self.dtype),
            init=init,
            init_scale=self.init_scale,
            rng=init_rng,
            dropout=self.dropout,
            dropout_rng=dropout_rng,
        )
        self._loss = make_loss(self.loss_)

    def _check_standardized_by(self, scaler: Any, X: np.ndarray) -> None:
        """``fit``'s ``standardized_by``: a fitted scaler for X's columns, X in the model's dtype."""
        if scaler is None:
            return
        if not self.standardize:
            raise InvalidParameterError(
                "standardized_by", scaler, "None when standardize=False (the model takes raw inputs)"
            )
        if not isinstance(scaler, Standardizer) or scaler.mean is None or scaler.scale is None:
            raise InvalidParameterError("standardized_by", scaler, "a fitted ann.preprocessing.Standardizer")
        if scaler.n_features != X.shape[1]:
            raise DataError(
                f"standardized_by was fitted on {scaler.n_features} features but X has {X.shape[1]}"
            )

    def _inputs(self, X: np.ndarray, standardized_by: Standardizer | None = None, name: str = "X") -> np.ndarray:
        """The network's input rows: ``X`` standardised (unless it already is) in the model's dtype."""
        if standardized_by is not None:
            if X.dtype != np.dtype(self.dtype):
                raise DataError(
                    f"{name} is {X.dtype} but the model computes in {self.dtype}: standardise it "
                    f"with scaler.transform({name}, dtype={self.dtype!r}) to pass standardized_by"
                )
            return np.ascontiguousarray(X)
        if self.x_scaler_ is not None:
            return self.x_scaler_.transform(X, dtype=self.dtype)
        return np.ascontiguousarray(X, dtype=self.dtype)

    def _targets(self, y: np.ndarray) -> np.ndarray:
        """Targets as the network sees them: scaled values, a 0/1 column, or one-hot rows."""
        if self.task_ == "regression":
            Y = y.reshape(len(y), -1).astype(np.float64)
            if self.y_scaler_ is not None:
                Y = self.y_scaler_.transform(Y)
            return np.ascontiguousarray(Y, dtype=self.dtype)
        codes = self._encode(y)
        if self.task_ == "binary":
            return codes.astype(self.dtype).reshape(-1, 1)
        return one_hot(codes, len(self.classes_), dtype=self.dtype)

    def _encode(self, y: np.ndarray) -> np.ndarray:
        codes = np.searchsorted(self.classes_, y)
        codes = np.clip(codes, 0, len(self.classes_) - 1)
        unknown = self.classes_[codes] != y
        if np.any(unknown):
            raise DataError(
                f"y holds label {y[np.argmax(unknown)].item()!r} not seen in training; "
                f"known labels: {self.classes_.tolist()}"
            )
        return codes

    def _network(self) -> Network:
        if self.network_ is None:
            raise AnnError("this MLP is not fitted yet: call fit(X, y) first")
        return self.network_

    # ------------------------------------------------------------------ training
    def fit(
        self,
        X: Any,
        y: Any,
        validation_data: tuple[Any, Any] | None = None,
        callbacks: Iterable[Callback] | None = None,
        standardized_by: Standardizer | None = None,
    ) -> History:
        """Train from scratch; returns the :class:`History`.

        ``callbacks`` are called as ``callback(epoch, logs)`` after every epoch (``epoch``
        is 1-based; ``logs`` holds that epoch's metrics and ``epoch_seconds``). A truthy
        return value stops training; an exception raised by a callback propagates.

        ``standardized_by``: ``X`` (and the validation X) are already standardised by this
        fitted :class:`~ann.preprocessing.Standardizer`, as
        ``scaler.transform(X, dtype=model.dtype)``. The model keeps the scaler, so
        ``predict``, ``evaluate`` and a saved model take raw inputs as usual, and the run is
        bit for bit the one ``fit(X_raw, y)`` gives with ``standardize=True``: standardise a
        data set once and train many models on it without repeating the work per fit.

        >>> import numpy as np, ann
        >>> from ann.preprocessing import Standardizer
        >>> rng = np.random.default_rng(0)
        >>> X, y = rng.normal(5.0, 3.0, size=(200, 4)), rng.integers(0, 2, size=200)
        >>> scaler = Standardizer().fit(X)                    # once per data set
        >>> Z = scaler.transform(X, dtype="float32")          # the models' dtype
        >>> fast = ann.MLP(hidden_layers=[8], epochs=3).fit(Z, y, standardized_by=scaler)
        >>> plain = ann.MLP(hidden_layers=[8], epochs=3).fit(X, y)
        >>> fast.history == plain.history
        True

        Raises:
            NonFiniteLossError: the loss became NaN or infinite (at once, with the epoch).
        """
        started = time.perf_counter()
        X = self._check_X(X) if self.network_ is None else self._refit_check(X)
        self._check_standardized_by(standardized_by, X)
        y = self._check_y(y, X.shape[0])
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise DataError("validation_data must be a pair (X_val, y_val)")
            X_val = self._check_X(validation_data[0], "X_val")
            if X_val.shape[1] != X.shape[1]:
                raise DataError(
                    f"X_val has {X_val.shape[1]} features but X has {X.shape[1]}"
                )
            y_val = self._check_y(validation_data[1], X_val.shape[0], "y_val", "X_val")
        if self.batch_size > X.shape[0]:
            raise InvalidParameterError(
                "batch_size",
                self.batch_size,
                f"an integer in [1, {X.shape[0]}] (the training set has {X.shape[0]} samples)",
            )
        callbacks = list(callbacks or [])
        for callback in callbacks:
            if not callable(callback):
                raise InvalidParameterError("callbacks", callback, "callables cb(epoch, logs)")

        self._setup(X, y, standardized_by)
        net = self.network_
        inputs, targets = self._inputs(X, standardized_by), self._targets(y)
        if validation_data is not None:
            val_inputs, val_targets = self._inputs(X_val, standardized_by, "X_val"), self._targets(y_val)

        optimizer = make_optimizer(
            self.optimizer, net.theta, self.lr, momentum=self.momentum, beta1=self.beta1,
            beta2=self.beta2, rho=self.rho, eps=self.eps, weight_decay=self.weight_decay,
            n_weights=net.n_weights,
        )
        schedule = make_schedule(
            self.lr_schedule, self.lr, self.epochs,
            **{name: getattr(self, name) for name in P.SCHEDULE_SETTINGS[self.lr_schedule]},
        )
        history = History()
        batches = _Batches(inputs, targets, self.batch_size, self._shuffle_rng if self.shuffle else None)
        validation = (val_inputs, val_targets) if validation_data is not None else None
        with np.errstate(over="ignore", invalid="ignore"):  # a non-finite loss raises instead
            self._epochs(history, batches, optimizer, schedule, callbacks, validation)
        history.fit_seconds = time.perf_counter() - started
        self.history_ = history
        return history

    def _epochs(self, history, batches, optimizer, schedule, callbacks, validation) -> None:
        """The epoch loop of :meth:`fit`: train, evaluate, record, call back, maybe stop."""
        stopping = _EarlyStopping(self, self.network_) if self.early_stopping else None
        best_value = math.inf
        for epoch in range(1, self.epochs + 1):
            epoch_start = time.perf_counter()
            optimizer.lr = schedule.lr_at(epoch)
            logs = self._train_epoch(epoch, batches, optimizer)
            if validation is not None:
                val_logs = self._evaluate_prepared(*validation)
                logs.update({f"val_{name}": value for name, value in val_logs.items()})
            logs["lr"] = optimizer.lr
            for name, value in logs.items():
                history.history.setdefault(name, []).append(value)
            history.epochs = epoch
            monitored = logs[history.monitor]
            schedule.observe(monitored)
            if monitored < best_value:
                best_value, history.best_epoch = monitored, epoch

            seconds = time.perf_counter() - epoch_start
            history.epoch_seconds.append(seconds)
            for callback in callbacks:
                if callback(epoch, {**logs, "epoch_seconds": seconds}):
                    history.stop_reason = "callback"
            if stopping is not None and stopping.update(epoch, monitored) and not history.stop_reason:
                history.stop_reason = "early_stopping"
            if history.stop_reason:
                history.stopped_early = epoch < self.epochs
                break
        if stopping is not None:
            stopping.restore()

    def _refit_check(self, X: Any) -> np.ndarray:
        # A refit may change the number of features: check X as if unfitted.
        self.network_ = None
        return self._check_X(X)

    def _train_epoch(self, epoch: int, batches: "_Batches", optimizer) -> dict[str, float]:
        """One pass of mini-batch gradient descent; returns the epoch's training metrics."""
        net, loss_fn, out_act = self.network_, self._loss, self.network_.activations[-1]
        l2, clip_norm = self.l2, self.clip_norm
        if l2:
            theta_w, grad_w = net.theta[: net.n_weights], net.grad[: net.n_weights]
        loss_sum, score = 0.0, _RunningScore(self)
        for xb, yb in batches:
            a = net.forward(xb, training=True)
            z = net.z_out
            batch_loss = loss_fn.value(yb, z, a)
            if not math.isfinite(batch_loss):
                raise NonFiniteLossError(epoch, batch_loss)
            net.backward(loss_fn.output_gradient(yb, z, a, out_act))
            if l2:
                grad_w += l2 * theta_w  # d/dW of l2/2 * sum(W^2)
            if clip_norm is not None:
                _clip_by_global_norm(net.grad, clip_norm)
            optimizer.step(net.grad)
            loss_sum += batch_loss * len(xb)
            score.add(yb, a)
        train_loss = loss_sum / batches.n + self._l2_penalty()
        if not math.isfinite(train_loss):
            raise NonFiniteLossError(epoch, train_loss)
        return {"train_loss": train_loss, **score.result("train_")}

    def _l2_penalty(self) -> float:
        if not self.l2:
            return 0.0
        net = self.network_
        w = net.theta[: net.n_weights].astype(np.float64)
        return 0.5 * self.l2 * float(w @ w)

    # ------------------------------------------------------------------ inference
    def _forward_all(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Output activations and logits for all rows, in chunks, inference mode."""
        net = self._network()
        outputs, logits = [], []
        for start in range(0, len(inputs), _EVAL_CHUNK):
            a = net.forward(inputs[start : start + _EVAL_CHUNK], training=False)
            outputs.append(a.copy())
            logits.append(net.output_pre_activation().copy())
        return np.concatenate(outputs), np.concatenate(logits)

    def _evaluate_prepared(self, inputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        a, z = self._forward_all(inputs)
        result = {"loss": self._loss.value(targets, z, a)}
        score = _RunningScore(self)
        score.add(targets, a)
        result.update(score.result())
        return result

    def constant_loss(self, y: Any) -> float:
        """The loss of the best constant prediction for ``y``, on the scale ``fit`` reports.

        The reference a learning curve is judged against: a model whose loss is not below it
        has learned nothing. ``y`` is scaled (or encoded) as the network sees it, so the value
        is comparable with ``History.history["train_loss"]``. See
        :meth:`ann.losses.Loss.constant_value`.
        """
        self._network()
        y = np.asarray(y)
        return self._loss.constant_value(self._targets(self._check_y(y, y.shape[0] if y.ndim else 1)))

    def evaluate(self, X: Any, y: Any) -> dict[str, float]:
        """Loss and metrics on ``(X, y)``: ``loss`` + ``accuracy``, or ``loss``, ``mae``, ``rmse``, ``r2``."""
        self._network()
        X = self._check_X(X)
        y = self._check_y(y, X.shape[0])
        return self._evaluate_prepared(self._inputs(X), self._targets(y))

    def _output(self, X: Any) -> np.ndarray:
        self._network()
        return self._forward_all(self._inputs(self._check_X(X)))[0].astype(np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """Class labels (classification) or values (regression) for each row of ``X``."""
        a = self._output(X)
        if self.task_ == "regression":
            values = self.y_scaler_.inverse_transform(a) if self.y_scaler_ is not None else a
            return values[:, 0] if self._y_was_1d else values
        return self.classes_[_class_codes(self.task_, a)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, one column per class in ``classes_`` order."""
        self._network()
        if self.task_ == "regression":
            raise AnnError("predict_proba is for classifiers; this model does regression")
        a = self._output(X)
        return np.hstack([1.0 - a, a]) if self.task_ == "binary" else a

    # ------------------------------------------------------------------ gradients
    def loss_and_gradients(self, X: Any, y: Any) -> tuple[float, list[np.ndarray]]:
        """The loss on ``(X, y)`` and its gradients, ordered as :meth:`parameters`.

        The network runs in inference mode (no dropout, rrelu at its mean slope), so the
        result is deterministic; the loss includes the L2 penalty. An unfitted model is
        first set up (preprocessing fitted on ``X``, weights initialised from the seed).
        """
        X = self._check_X(X)
        y = self._check_y(y, X.shape[0])
        if self.network_ is None:
            self._setup(X, y)
        net = self.network_
        inputs, targets = self._inputs(X), self._targets(y)
        a = net.forward(inputs, training=False)
        z = net.output_pre_activation()
        loss = self._loss.value(targets, z, a) + self._l2_penalty()
        net.backward(self._loss.output_gradient(targets, z, a, net.activations[-1]))
        if self.l2:
            net.grad[: net.n_weights] += self.l2 * net.theta[: net.n_weights]
        grads = [g.copy() for pair in zip(net.dW, net.db) for g in pair]
        return float(loss), grads

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> tuple[str, str]:
        """Write ``<path>.npz`` (arrays) and ``<path>.json`` (architecture); returns both paths."""
        return save_model(self, path)

    @classmethod
    def load(cls, path) -> "MLP":
        """Load a model written by :meth:`save` (refuses object arrays and wrong shapes)."""
        return load_model(path, cls)


class _Batches:
    """One epoch's mini-batches, reshuffled on every iteration when given a generator.

    Each batch is gathered straight into a small reusable buffer (its indices sorted, which
    only changes the order of rows inside the batch), so no shuffled copy of the whole
    training set is ever made.
    """

    def __init__(self, inputs, targets, batch_size: int, rng: np.random.Generator | None):
        self.inputs, self.targets = inputs, targets
        self.n, self.batch_size, self.rng = len(inputs), batch_size, rng
        if rng is not None and batch_size < self.n:
            self.x_buffer = np.empty((batch_size, inputs.shape[1]), inputs.dtype)
            self.y_buffer = np.empty((batch_size, targets.shape[1]), targets.dtype)

    def __iter__(self):
        if self.batch_size >= self.n:  # batch gradient descent: the order does not matter
            return iter(((self.inputs, self.targets),))
        return self._mini_batches()

    def _mini_batches(self):
        if self.rng is None:
            for start in range(0, self.n, self.batch_size):
                yield self.inputs[start : start + self.batch_size], self.targets[start : start + self.batch_size]
            return
        order = self.rng.permutation(self.n)
        for start in range(0, self.n, self.batch_size):
            index = np.sort(order[start : start + self.batch_size])
            m = len(index)
            # mode="clip": the indices are valid by construction, and the default "raise"
            # makes take() gather into a temporary copy of the buffer first.
            yield (
                self.inputs.take(index, axis=0, out=self.x_buffer[:m], mode="clip"),
                self.targets.take(index, axis=0, out=self.y_buffer[:m], mode="clip"),
            )


class _EarlyStopping:
    """Stop when the monitored loss has not improved by ``min_delta`` for ``patience`` epochs.

    With ``restore_best_weights`` the weights of the epoch with the lowest monitored loss
    are put back when training ends, whether it stopped early or ran all its epochs.
    """

    def __init__(self, model: MLP, net: Network) -> None:
        self.patience, self.min_delta = model.patience, model.min_delta
        self.net = net
        self.reference = math.inf  # the value an improvement must beat by min_delta
        self.best = math.inf
        self.best_theta = net.theta.copy() if model.restore_best_weights else None
        self.waited = 0

    def update(self, epoch: int, monitored: float) -> bool:
        """Record one epoch; True when patience has run out."""
        if monitored < self.best:
            self.best = monitored
            if self.best_theta is not None:
                np.copyto(self.best_theta, self.net.theta)
        if monitored < self.reference - self.min_delta:
            self.reference, self.waited = monitored, 0
        else:
            self.waited += 1
        return self.waited >= self.patience

    def restore(self) -> None:
        if self.best_theta is not None and math.isfinite(self.best):
            np.copyto(self.net.theta, self.best_theta)


def _clip_by_global_norm(g: np.ndarray, clip_norm: float) -> None:
    """``g *= clip_norm / ||g||`` when ``||g|| > clip_norm`` (Pascanu et al. 2013, Algorithm 1).

    ``g`` holds every weight and bias gradient, so its norm is the global norm over all
    of them (as TensorFlow's ``clip_by_global_norm`` and PyTorch's ``clip_grad_norm_``).
    """
    norm = math.sqrt(float(g @ g))
    if norm > clip_norm:
        g *= clip_norm / norm


def _class_codes(task: str, a: np.ndarray) -> np.ndarray:
    """Predicted class codes from output activations."""
    if task == "binary":
        return (a[:, 0] >= 0.5).astype(np.intp)
    return np.argmax(a, axis=1)


class _RunningScore:
    """Accumulates the task's metric over batches (accuracy, or MAE/RMSE/R² in target units)."""

    def __init__(self, model: MLP) -> None:
        self.task = model.task_
        self.scaler = model.y_scaler_
        self.count = 0
        self.correct = 0
        self.targets: list[np.ndarray] = []
        self.outputs: list[np.ndarray] = []

    def add(self, targets: np.ndarray, outputs: np.ndarray) -> None:
        self.count += len(targets)
        if self.task == "regression":
            self.targets.append(np.array(targets, dtype=np.float64))
            self.outputs.append(np.array(outputs, dtype=np.float64))
        elif self.task == "binary":  # one column: compare it whole, no slicing (hot path)
            self.correct += int(np.count_nonzero((outputs >= 0.5) == (targets >= 0.5)))
        else:
            self.correct += int(
                np.count_nonzero(np.argmax(outputs, axis=1) == np.argmax(targets, axis=1))
            )

    def result(self, prefix: str = "") -> dict[str, float]:
        """The metrics, their names prefixed (``train_accuracy``, ...)."""
        if self.task != "regression":
            return {prefix + "accuracy": self.correct / self.count}
        y, a = np.concatenate(self.targets), np.concatenate(self.outputs)
        if self.scaler is not None:
            y, a = self.scaler.inverse_transform(y), self.scaler.inverse_transform(a)
        return {prefix + name: value for name, value in regression_metrics(y, a).items()}
