"""scikit-learn estimators over jitbp networks (``pip install jitbp[sklearn]``).

- :class:`MLPClassifier` / :class:`MLPRegressor`: scikit-learn's multi-layer
  perceptrons' parameter names where they overlap (``hidden_layer_sizes``,
  ``activation``, ``solver``, ``alpha``, ``batch_size``, ``learning_rate_init``,
  ``max_iter``, ``tol``, ``n_iter_no_change``, ``early_stopping``,
  ``validation_fraction``, ``random_state``, ``warm_start``, ...), trained by
  :meth:`jitbp.Network.learn`.
- :class:`NetworkClassifier` / :class:`NetworkRegressor`: any jitbp network, from a
  function ``build(n_features, n_outputs, **build_kwargs)`` (which may also take
  ``seed=``) returning it -- skorch's idea. A classifier's network outputs one logit
  per class (trained with cross_entropy); a regressor's, one value per target.

Labels may be of any type (strings, 1..10, ...): ``classes_`` maps them to the class
indices the network is trained on. Estimators pickle (the network goes as its model
file, with the optimizer's state, so ``warm_start`` and ``partial_fit`` continue after
unpickling) and clone; they run in ``Pipeline``, ``GridSearchCV(n_jobs=...)`` and
``cross_val_score``: worker processes load the compiled kernels from Numba's cache.

Differences from scikit-learn's MLP: ``solver`` is ``"adam"`` or ``"sgd"`` (no
lbfgs; a constant learning rate), and ``alpha``'s L2 penalty (weight decay
``alpha / batch_size`` per step, as scikit-learn's gradient) also reaches biases.
"""
import inspect
import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import check_is_fitted, validate_data

from .callbacks import EarlyStopping
from .network import Network, Sequential
from .optim import SGD, Adam
from .plugins import layer
from .proba import network_from_bytes, network_to_bytes, softmax

#: scikit-learn's activation names -> jitbp layers.
ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "logistic": "sigmoid", "identity": "identity"}


class _NetworkEstimator(BaseEstimator):
    """Fit machinery shared by every estimator here; subclasses say what network to build."""

    _classifier = False

    # -- what subclasses provide ------------------------------------------------------
    def _build_network(self, n_features, n_outputs, seed):
        kwargs = dict(self.build_kwargs or {})
        if self.build is None or not callable(self.build):
            raise ValueError(f"build must be a function (n_features, n_outputs, **build_kwargs) -> "
                             f"jitbp.Network, got {self.build!r}")
        if "seed" in inspect.signature(self.build).parameters:
            kwargs["seed"] = seed
        net = self.build(n_features, n_outputs, **kwargs)
        if not isinstance(net, Network):
            raise TypeError(f"build returned {type(net).__name__}, not a jitbp.Network")
        if net.output.shape != (n_outputs,) or [node.shape for node in net.inputs] != [(n_features,)]:
            raise ValueError(f"build must return a network from {n_features} features to {n_outputs} "
                             f"outputs, got inputs {[n.shape for n in net.inputs]} and output {net.output.shape}")
        return net

    @property
    def _loss(self):
        return "cross_entropy" if self._classifier else getattr(self, "loss", "mse")

    # -- training ---------------------------------------------------------------------
    def _optimizer(self, batch):
        decay = float(self.alpha) / batch
        if self.solver == "adam":
            return Adam(lr=self.learning_rate_init, betas=(self.beta_1, self.beta_2), eps=self.epsilon,
                        weight_decay=decay)
        if self.solver == "sgd":
            return SGD(lr=self.learning_rate_init, momentum=self.momentum,
                       nesterov=bool(self.nesterovs_momentum and self.momentum > 0), weight_decay=decay)
        raise ValueError(f"solver must be 'adam' or 'sgd' (jitbp has no lbfgs), got {self.solver!r}")

    def _batch(self, n):
        if isinstance(self.batch_size, str) and self.batch_size == "auto":
            return min(200, n)
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, numbers.Integral) \
                or self.batch_size < 1:
            raise ValueError(f"batch_size must be 'auto' or a positive integer, got {self.batch_size!r}")
        return int(min(self.batch_size, n))

    def _targets(self, y, first, classes=None):
        if not self._classifier:
            y = np.asarray(y, dtype=np.float64)
            if first:
                self._y_ndim = y.ndim
                self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
            return y.reshape(len(y), -1), self.n_outputs_
        check_classification_targets(y)
        if first:
            self.classes_ = unique_labels(y) if classes is None else unique_labels(np.asarray(classes))
        unseen = np.setdiff1d(unique_labels(y), self.classes_)
        if unseen.size:
            raise ValueError(f"y has labels {unseen.tolist()} not in classes_ {self.classes_.tolist()}")
        self.n_outputs_ = len(self.classes_)
        return np.searchsorted(self.classes_, y), self.n_outputs_

    def _class_weight(self):
        """``class_weight`` keyed by class index (the network's labels), or as given."""
        weights = getattr(self, "class_weight", None)
        if not isinstance(weights, dict):
            return weights
        unknown = [label for label in weights if label not in set(self.classes_.tolist())]
        if unknown:
            raise ValueError(f"class_weight names labels {unknown} not in classes_ {self.classes_.tolist()}")
        return {int(np.searchsorted(self.classes_, label)): weight for label, weight in weights.items()}

    def _fit(self, X, y, incremental, classes=None, sample_weight=None):
        first = not hasattr(self, "net_") or not (incremental or self.warm_start)
        X, y = validate_data(self, X, y, reset=first, dtype=np.float64,
                             multi_output=not self._classifier, y_numeric=not self._classifier)
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=np.float64)
        target, n_outputs = self._targets(y, first, classes)
        rng = check_random_state(self.random_state)
        if first:
            self.net_ = self._build_network(X.shape[1], n_outputs, int(rng.randint(2**31)))
            self.optimizer_ = self._optimizer(self._batch(len(X)))
            self.n_iter_, self.loss_curve_, self.t_ = 0, [], 0
            self.best_loss_ = np.inf
            if self.early_stopping:
                self.validation_scores_, self.best_validation_score_ = [], -np.inf
        options = {}
        epochs = 1 if incremental else int(self.max_iter)
        if self.early_stopping and not incremental:
            stratify = target if self._classifier and np.min(np.bincount(target)) >= 2 else None
            split = train_test_split(X, target, *(() if sample_weight is None else (sample_weight,)),
                                     test_size=self.validation_fraction, random_state=rng.randint(2**31),
                                     stratify=stratify)
            X, Xv, target, tv = split[:4]
            sample_weight = split[4] if sample_weight is not None else None
            score = "accuracy" if self._classifier else "r2"
            stopper = EarlyStopping(f"val_{score}", patience=self.n_iter_no_change, min_delta=self.tol,
                                    restore_best=True)
            options = dict(validation=(Xv, tv), metrics=[score], callbacks=[stopper])
        elif not incremental:
            options = dict(tol=self.tol, patience=self.n_iter_no_change)
        history = self.net_.learn(
            X, target, loss=self._loss, optimizer=self.optimizer_, epochs=epochs,
            batch_size=self._batch(len(X)), shuffle=bool(self.shuffle), seed=int(rng.randint(2**31)),
            verbose=1 if self.verbose else 0, sample_weight=sample_weight,
            class_weight=self._class_weight() if self._classifier else None, **options)
        self.history_ = history
        self.n_iter_ += len(history)
        self.t_ += len(history) * len(X)
        self.loss_curve_ = self.loss_curve_ + list(history)
        self.loss_ = float(history[-1])
        self.best_loss_ = min(self.best_loss_, self.loss_)
        if self.early_stopping and not incremental:
            scores = history.history["val_" + options["metrics"][0]]
            self.validation_scores_ = self.validation_scores_ + list(scores)
            self.best_validation_score_ = max(self.best_validation_score_, max(scores))
        if not incremental and len(history) == epochs and epochs > 0 and history.stopped is None \
                and self._still_improving(history):
            warnings.warn(f"{type(self).__name__}: stopped at max_iter={self.max_iter} epochs while the "
                          f"loss was still improving; raise max_iter", ConvergenceWarning)
        return self

    def _still_improving(self, history):
        last = list(history)[-(self.n_iter_no_change + 1):]
        return len(last) > 1 and min(last[1:]) < last[0] - self.tol

    def fit(self, X, y, sample_weight=None):
        """Train for up to ``max_iter`` epochs (from scratch unless ``warm_start``); each sample's
        loss weighted by ``sample_weight`` (and ``class_weight``, for classifiers)."""
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    def _output(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.net_.predict(X)

    # -- pickling: the network as its model file, with the optimizer's state ----------
    def __getstate__(self):
        state = super().__getstate__()
        if "net_" in state:
            state = dict(state)
            state["net_"] = network_to_bytes(state["net_"], state.pop("optimizer_", None))
        return state

    def __setstate__(self, state):
        if isinstance(state.get("net_"), bytes):
            state = dict(state)
            state["net_"] = network_from_bytes(state["net_"], self._loss)
            state["optimizer_"] = state["net_"].saved_optimizer
        super().__setstate__(state)

    @property
    def coefs_(self):
        """Weights of each dense layer as (n_in, n_out) arrays, scikit-learn's layout."""
        check_is_fitted(self, "net_")
        return [lay.params["W"].T for lay in self.net_.layers if "W" in lay.params]

    @property
    def intercepts_(self):
        check_is_fitted(self, "net_")
        return [lay.params["b"] for lay in self.net_.layers if "b" in lay.params]


class _ClassifierMixin(ClassifierMixin):
    _classifier = True

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch on ``(X, y)``; ``classes`` (all labels) on the first call, else y's."""
        return self._fit(X, y, incremental=True, classes=classes, sample_weight=sample_weight)

    def predict_proba(self, X):
        """Class probabilities, columns in ``classes_`` order."""
        return softmax(self._output(X))

    def predict_log_proba(self, X):
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        scores = self._output(X)
        return self.classes_[np.argmax(scores, axis=1)]


class _RegressorMixin(RegressorMixin):
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch on ``(X, y)``."""
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def predict(self, X):
        out = self._output(X)
        return out.ravel() if self._y_ndim == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def _mlp(n_features, n_outputs, hidden_layer_sizes, activation, init, seed):
    """dense -> activation -> ... -> dense(n_outputs), seeded per layer from ``seed``."""
    sizes = (hidden_layer_sizes,) if isinstance(hidden_layer_sizes, numbers.Integral) else tuple(hidden_layer_sizes)
    if not all(isinstance(s, numbers.Integral) and s > 0 for s in sizes):
        raise ValueError(f"hidden_layer_sizes must be positive integers, got {hidden_layer_sizes!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    seeds = np.random.SeedSequence(seed).generate_state(len(sizes) + 1)
    layers, width = [], n_features
    for k, size in enumerate(sizes):
        layers += [layer("dense", width, int(size), seed=int(seeds[k]), init=init), layer(ACTIVATIONS[activation])]
        width = int(size)
    layers.append(layer("dense", width, n_outputs, seed=int(seeds[-1]), init=init))
    return Sequential(*layers)


_COMMON_DOC = """
    Parameters follow scikit-learn's MLP where they overlap; ``init`` is jitbp's
    weight initialisation (``"uniform"``, ``"he_uniform"``, ``"glorot_uniform"``, ...).
    Fitted: ``net_`` (the jitbp network), ``optimizer_``, ``history_`` (the last
    :class:`~jitbp.history.History`), ``loss_``, ``loss_curve_``, ``n_iter_``, ``t_``,
    ``n_features_in_``, ``n_outputs_`` and, with ``early_stopping``,
    ``validation_scores_``, ``best_validation_score_``.
"""


def _store_params(estimator, arguments):
    """Set each ``__init__`` argument as the attribute of its name, as scikit-learn expects."""
    for name, value in arguments.items():
        if name != "self":
            setattr(estimator, name, value)


_CLASS_WEIGHT_DOC = """
    ``class_weight`` (``{label: weight}``, ``"balanced"`` or None) weights each sample's
    loss by its class, as torch's ``CrossEntropyLoss(weight=...)``; it multiplies
    ``fit``'s ``sample_weight``.
"""


class MLPClassifier(_ClassifierMixin, _NetworkEstimator):
    __doc__ = ("A multi-layer perceptron classifier (softmax over one logit per class)." + _COMMON_DOC
               + _CLASS_WEIGHT_DOC)

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate_init=0.001, max_iter=200, shuffle=True, random_state=None,
                 tol=1e-4, verbose=False, warm_start=False, momentum=0.9, nesterovs_momentum=True,
                 early_stopping=False, validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, init="uniform", class_weight=None):
        _store_params(self, locals())

    def _build_network(self, n_features, n_outputs, seed):
        return _mlp(n_features, n_outputs, self.hidden_layer_sizes, self.activation, self.init, seed)


class MLPRegressor(_RegressorMixin, _NetworkEstimator):
    __doc__ = "A multi-layer perceptron regressor (identity output, mean squared error)." + _COMMON_DOC

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate_init=0.001, max_iter=200, shuffle=True, random_state=None,
                 tol=1e-4, verbose=False, warm_start=False, momentum=0.9, nesterovs_momentum=True,
                 early_stopping=False, validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, init="uniform"):
        _store_params(self, locals())
    _build_network = MLPClassifier._build_network


class _NetworkParams:
    def __init__(self, build=None, build_kwargs=None, *, solver="adam", alpha=0.0, batch_size="auto",
                 learning_rate_init=0.001, max_iter=200, shuffle=True, random_state=None, tol=1e-4,
                 verbose=False, warm_start=False, momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10):
        _store_params(self, locals())


class NetworkClassifier(_ClassifierMixin, _NetworkEstimator):
    """A classifier around any jitbp network: ``build(n_features, n_classes, **build_kwargs)``
    (optionally taking ``seed=``) returns a :class:`jitbp.Network` with one logit per class.
    Training options are :class:`MLPClassifier`'s (``alpha`` defaults to 0 here)."""

    __init__ = _NetworkParams.__init__


class NetworkRegressor(_RegressorMixin, _NetworkEstimator):
    """A regressor around any jitbp network: ``build(n_features, n_outputs, **build_kwargs)``
    returns a :class:`jitbp.Network` with one output per target, trained with mse."""

    __init__ = _NetworkParams.__init__


__all__ = ["MLPClassifier", "MLPRegressor", "NetworkClassifier", "NetworkRegressor"]
