"""MLPClassifier: a scikit-learn style facade over the functional core, for people who script.

Conventions as in scikit-learn: ``__init__`` only stores its arguments; ``fit`` validates them
(through ``ModelSpec`` and ``TrainConfig``), turns ``random_state`` into a generator and
returns ``self``; learned attributes end in ``_`` (``state_``, ``classes_``, ``history_``, ...).
Each ``fit``/``partial_fit`` call holds out ``validation_fraction`` of its rows for the
per-epoch validation metrics that ``train_segment`` records in ``history_``.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.nn.config import TrainConfig, as_float
from engine.nn.model import ModelSpec
from engine.nn.model import predict_proba as model_predict_proba
from engine.nn.state import TrainState, new_state
from engine.nn.train import train_segment

_CONFIG_FIELDS = (
    "learning_rate", "optimizer", "momentum", "beta1", "beta2", "epsilon", "batch_size", "l2",
    "dropout", "bn_momentum", "decay", "decay_rate", "decay_every",
)


class NotFittedError(ValueError, AttributeError):
    """Raised when predicting with an estimator that has not been fitted."""


@dataclass(frozen=True)
class ArrayData:
    """The attributes of ``engine.data.Dataset`` that ``train_segment`` reads."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    n_classes: int


class MLPClassifier:
    """Multi-layer perceptron classifier trained by ``engine.nn.train_segment``."""

    def __init__(
        self,
        hidden: tuple[int, ...] = (64,),
        activation: str = "relu",
        batch_norm: bool = True,
        learning_rate: float = 1e-3,
        optimizer: str = "adam",
        batch_size: int = 64,
        n_epochs: int = 20,
        l2: float = 0.0,
        dropout: float = 0.0,
        random_state: int | np.random.Generator | None = None,
        *,
        init: str = "he",
        momentum: float = 0.9,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        bn_momentum: float = 0.9,
        decay: str = "none",
        decay_rate: float = 0.0,
        decay_every: int = 10,
        validation_fraction: float = 0.1,
        dtype: str = "float32",
    ) -> None:
        self.hidden = hidden
        self.activation = activation
        self.batch_norm = batch_norm
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.batch_size = batch_size
        self.n_epochs = n_epochs
        self.l2 = l2
        self.dropout = dropout
        self.random_state = random_state
        self.init = init
        self.momentum = momentum
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.bn_momentum = bn_momentum
        self.decay = decay
        self.decay_rate = decay_rate
        self.decay_every = decay_every
        self.validation_fraction = validation_fraction
        self.dtype = dtype

    # -- scikit-learn parameter protocol -----------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> MLPClassifier:
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"invalid parameter {name!r} for MLPClassifier; valid: {', '.join(valid)}"
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = inspect.signature(type(self).__init__).parameters
        changed = [
            f"{k}={v!r}" for k, v in self.get_params().items()
            if not (isinstance(v, type(defaults[k].default)) and v == defaults[k].default)
        ]
        return f"MLPClassifier({', '.join(changed)})"

    # -- fitting ------------------------------------------------------------------------
    def _config(self) -> TrainConfig:
        return TrainConfig(**{name: getattr(self, name) for name in _CONFIG_FIELDS})

    def _check_X(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"X must be a non-empty 2-D array, got shape {X.shape}")
        if not np.isfinite(X).all():
            raise ValueError("X contains NaN or infinite values")
        n_features = getattr(self, "n_features_in_", None)
        if n_features is not None and X.shape[1] != n_features:
            raise ValueError(f"X has {X.shape[1]} features, but the model was fitted with "
                             f"{n_features}")
        return X

    def _encode(self, y: Any, n_rows: int) -> np.ndarray:
        y = np.asarray(y)
        if y.shape != (n_rows,):
            raise ValueError(f"y must have shape ({n_rows},) to match X, got {y.shape}")
        unknown = np.setdiff1d(y, self.classes_)
        if unknown.size:
            raise ValueError(f"y has labels {unknown.tolist()} not in classes_ "
                             f"{self.classes_.tolist()}")
        return np.searchsorted(self.classes_, y).astype(np.int64)

    def _start(self, X: np.ndarray, classes: np.ndarray) -> None:
        if len(classes) < 2:
            raise ValueError(f"need at least 2 classes, got {classes.tolist()}")
        as_float("validation_fraction", self.validation_fraction, low=0, high=1, low_open=True,
                 high_open=True)
        rs = self.random_state
        self._rng = rs if isinstance(rs, np.random.Generator) else np.random.default_rng(rs)
        self.classes_ = classes
        self.n_features_in_ = X.shape[1]
        self.spec_ = ModelSpec(
            n_inputs=X.shape[1], hidden=tuple(self.hidden), n_classes=len(classes),
            activation=self.activation, batch_norm=self.batch_norm, init=self.init,
            dtype=self.dtype,
        )
        self.state_: TrainState = new_state(self.spec_, int(self._rng.integers(2**63)))

    def _train(self, X: np.ndarray, y: np.ndarray, n_epochs: int) -> None:
        n = len(X)
        n_val = int(round(self.validation_fraction * n))
        if n < 2:
            raise ValueError(f"need at least 2 rows (training and validation), got {n}")
        n_val = min(max(n_val, 1), n - 1)
        order = self._rng.permutation(n)
        val, train = order[:n_val], order[n_val:]
        data = ArrayData(X[train], y[train], X[val], y[val], len(self.classes_))
        result = train_segment(self.state_, self.config_, data, n_epochs)
        self.state_ = result.state
        self.history_ = result.state.history
        self.status_, self.message_ = result.status, result.message
        if result.status != "ok":
            warnings.warn(f"training {result.status}: {result.message}", RuntimeWarning,
                          stacklevel=3)

    def fit(self, X: Any, y: Any) -> MLPClassifier:
        """Train a fresh model for ``n_epochs`` epochs; returns self."""
        self.config_ = self._config()
        for attr in ("n_features_in_", "classes_", "state_", "history_"):
            self.__dict__.pop(attr, None)
        X = self._check_X(X)
        self._start(X, np.unique(np.asarray(y)))
        self._train(X, self._encode(y, len(X)), self.n_epochs)
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> MLPClassifier:
        """One more epoch on (X, y), starting a model on the first call; returns self."""
        self.config_ = self._config()
        X = self._check_X(X)
        if not hasattr(self, "state_"):
            self._start(X, np.unique(np.asarray(y if classes is None else classes)))
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes {np.unique(classes).tolist()} differ from classes_ "
                             f"{self.classes_.tolist()} of the first call")
        self._train(X, self._encode(y, len(X)), 1)
        return self

    # -- prediction ---------------------------------------------------------------------
    def predict_proba(self, X: Any) -> np.ndarray:
        """(N, n_classes) probabilities, columns in the order of ``classes_``."""
        if not hasattr(self, "state_"):
            raise NotFittedError("this MLPClassifier is not fitted yet; call fit first")
        X = self._check_X(X)
        state = self.state_
        return model_predict_proba(state.spec, state.params, state.buffers, X)

    def predict(self, X: Any) -> np.ndarray:
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X: Any, y: Any) -> float:
        """Mean accuracy on (X, y)."""
        return float(np.mean(self.predict(X) == np.asarray(y)))
