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

import time
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ann import params as P
from ann.activations import make_activation
from ann.checks import check_standardized, check_standardized_by, check_validation_data, check_X, check_y
from ann.exceptions import AnnError, InvalidParameterError
from ann.history import History
from ann.losses import make_loss
from ann.network import Network, default_init
from ann.optimizers import make_optimizer
from ann.persistence import load_model, save_model
from ann.preprocessing import Standardizer
from ann.schedules import make_schedule
from ann.scoring import RunningScore, class_codes, evaluate, forward_all
from ann.targets import encode_targets, fit_targets, infer_task
from ann.training import Batches, EarlyStopping, add_l2_gradient, l2_penalty, run_epochs, train_epoch

Callback = Callable[[int, dict], Any]


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
        changed = {k: v for k, v in self.get_params().items()
                   if v != P.PARAMETERS_DEFAULTS[k] and not (k == "hidden_layers" and tuple(v) == (32,))}
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
        return check_X(X, name, None if self.network_ is None else self.n_features_in_)

    def _setup(self, X: np.ndarray, y: np.ndarray, x_scaler: Standardizer | None = None) -> None:
        """Fix the task, targets encoding, preprocessing and a freshly initialised network.

        ``x_scaler``: the fitted scaler ``X`` is already standardised by (else one is
        fitted on ``X`` when ``standardize`` is on).
        """
        task = infer_task(self.task, y)
        loss = self.loss or P.LOSSES_FOR_TASK[task][0]
        output = self.output_activation or P.OUTPUT_ACTIVATIONS_FOR_TASK[task][0]
        P.check_task_fit(task, loss, output)
        self.task_, self.loss_, self.output_activation_ = task, loss, output
        self.classes_, self.y_scaler_, n_outputs = fit_targets(task, y, self.standardize)
        self._y_was_1d = y.ndim == 1
        self.n_features_in_ = X.shape[1]
        if x_scaler is None and self.standardize:
            x_scaler = Standardizer().fit(X)
        self.x_scaler_ = x_scaler
        self._build(n_outputs)

    def _build(self, n_outputs: int) -> None:
        """A freshly initialised network for ``n_features_in_`` inputs and ``n_outputs`` outputs."""
        streams = np.random.SeedSequence(self.seed).spawn(4)
        init_rng, self._shuffle_rng, dropout_rng, rrelu_rng = map(np.random.default_rng, streams)
        settings = dict(leaky_slope=self.leaky_slope, rrelu_lower=self.rrelu_lower,
                        rrelu_upper=self.rrelu_upper, elu_alpha=self.elu_alpha, rng=rrelu_rng)
        hidden = [make_activation(self.activation, **settings) for _ in self.hidden_layers]
        self.network_ = Network(
            [self.n_features_in_, *self.hidden_layers, n_outputs],
            hidden + [make_activation(self.output_activation_)],
            dtype=np.dtype(self.dtype),
            init=default_init(self.activation) if self.init == "auto" else self.init,
            init_scale=self.init_scale,
            rng=init_rng,
            dropout=self.dropout,
            dropout_rng=dropout_rng,
        )
        self._loss = make_loss(self.loss_)

    def _inputs(self, X: np.ndarray, standardized_by: Standardizer | None = None, name: str = "X") -> np.ndarray:
        """The network's input rows: ``X`` standardised (unless it already is) in the model's dtype."""
        if standardized_by is not None:
            if standardized_by is not self.x_scaler_:  # fit has made it the model's: evaluate is given it
                raise InvalidParameterError("standardized_by", standardized_by, "None or the model's own scaler (x_scaler_)")
            return np.ascontiguousarray(check_standardized(X, name, self.dtype))
        if self.x_scaler_ is not None:
            return self.x_scaler_.transform(X, dtype=self.dtype)
        return np.ascontiguousarray(X, dtype=self.dtype)

    def _targets(self, y: np.ndarray) -> np.ndarray:
        return encode_targets(y, self.task_, self.classes_, self.y_scaler_, self.dtype)

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
        self.network_ = None  # a refit may change the number of features: check X as if unfitted
        X, y, validation = self._check_fit_data(X, y, validation_data, standardized_by)
        callbacks = list(callbacks or [])
        for callback in callbacks:
            if not callable(callback):
                raise InvalidParameterError("callbacks", callback, "callables cb(epoch, logs)")

        self._setup(X, y, standardized_by)
        batches = Batches(
            self._inputs(X, standardized_by), self._targets(y), self.batch_size,
            self._shuffle_rng if self.shuffle else None,
        )
        if validation is not None:
            X_val, y_val = validation
            validation = (self._inputs(X_val, standardized_by, "X_val"), self._targets(y_val))
        history = History()
        with np.errstate(over="ignore", invalid="ignore"):  # a non-finite loss raises instead
            self._train(history, batches, validation, callbacks)
        history.fit_seconds = time.perf_counter() - started
        self.history_ = history
        return history

    def _check_fit_data(self, X, y, validation_data, standardized_by):
        """``(X, y, (X_val, y_val) or None)`` checked, with ``batch_size`` and ``standardized_by``."""
        X = self._check_X(X)
        y = check_y(y, X.shape[0])
        validation = None if validation_data is None else check_validation_data(validation_data, X.shape[1])
        if self.batch_size > X.shape[0]:
            raise InvalidParameterError(
                "batch_size",
                self.batch_size,
                f"an integer in [1, {X.shape[0]}] (the training set has {X.shape[0]} samples)",
            )
        check_standardized_by(standardized_by, X, self.standardize)
        return X, y, validation

    def _train(self, history: History, batches: Batches, validation, callbacks) -> None:
        """The optimizer, the schedule and the epoch loop of :meth:`fit`."""
        net, loss = self.network_, self._loss
        optimizer = make_optimizer(
            self.optimizer, net.theta, self.lr, momentum=self.momentum, beta1=self.beta1,
            beta2=self.beta2, rho=self.rho, eps=self.eps, weight_decay=self.weight_decay,
            n_weights=net.n_weights,
        )
        schedule = make_schedule(
            self.lr_schedule, self.lr, self.epochs,
            **{name: getattr(self, name) for name in P.SCHEDULE_SETTINGS[self.lr_schedule]},
        )
        stopping = None
        if self.early_stopping:
            stopping = EarlyStopping(net, self.patience, self.min_delta, self.restore_best_weights)

        def train(epoch: int) -> dict[str, float]:
            score = RunningScore(self.task_, self.y_scaler_)
            return train_epoch(net, loss, optimizer, batches, score, self.l2, self.clip_norm, epoch)

        def validate() -> dict[str, float]:
            return evaluate(net, loss, self.task_, self.y_scaler_, *validation)

        run_epochs(
            history, self.epochs, train, validate if validation is not None else None,
            optimizer, schedule, callbacks, stopping,
        )

    # ------------------------------------------------------------------ inference
    def constant_loss(self, y: Any) -> float:
        """The loss of the best constant prediction for ``y``, on the scale ``fit`` reports.

        The reference a learning curve is judged against: a model whose loss is not below it
        has learned nothing. ``y`` is scaled (or encoded) as the network sees it, so the value
        is comparable with ``History.history["train_loss"]``. See
        :meth:`ann.losses.Loss.constant_value`.
        """
        self._network()
        y = np.asarray(y)
        return self._loss.constant_value(self._targets(check_y(y, y.shape[0] if y.ndim else 1)))

    def evaluate(self, X: Any, y: Any, standardized_by: Standardizer | None = None) -> dict[str, float]:
        """Loss and metrics on ``(X, y)``: ``loss`` + ``accuracy``, or ``loss``, ``mae``, ``rmse``, ``r2``.
        ``standardized_by``: ``X`` is ``scaler.transform(X_raw, dtype=model.dtype)`` by the model's
        own scaler (``x_scaler_``): the same scores, one standardised test set for many models."""
        net = self._network()
        X = self._check_X(X)
        y = check_y(y, X.shape[0])
        return evaluate(net, self._loss, self.task_, self.y_scaler_, self._inputs(X, standardized_by), self._targets(y))

    def _output(self, X: Any) -> np.ndarray:
        net = self._network()
        return forward_all(net, self._inputs(self._check_X(X)))[0].astype(np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """Class labels (classification) or values (regression) for each row of ``X``."""
        a = self._output(X)
        if self.task_ == "regression":
            values = self.y_scaler_.inverse_transform(a) if self.y_scaler_ is not None else a
            return values[:, 0] if self._y_was_1d else values
        return self.classes_[class_codes(self.task_, a)]

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
        y = check_y(y, X.shape[0])
        if self.network_ is None:
            self._setup(X, y)
        net = self.network_
        inputs, targets = self._inputs(X), self._targets(y)
        a = net.forward(inputs, training=False)
        z = net.output_pre_activation()
        loss = self._loss.value(targets, z, a) + l2_penalty(net, self.l2)
        net.backward(self._loss.output_gradient(targets, z, a, net.activations[-1]))
        add_l2_gradient(net, self.l2)
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
