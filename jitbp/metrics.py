"""Epoch-end metrics: plain functions ``(y_true, y_pred) -> float``.

``y_pred`` is what :meth:`Network.predict` returns (logits for a cross-entropy
network, probabilities for a bce one, values for a regression), ``y_true`` what
``learn`` was given as ``Y``. Any such function can be passed in ``metrics=[...]``;
its ``__name__`` names it in the :class:`~jitbp.history.History`.
"""
import re

import numpy as np

from .errors import UnknownNameError


def _labels_and_scores(y_true, y_pred):
    """``(true labels, (n, classes) scores)``; one-hot or 0/1 targets become labels."""
    y_true = np.asarray(y_true)
    scores = np.asarray(y_pred).reshape(len(y_pred), -1)
    if scores.shape[1] == 1:  # one probability (bce) or one score: class 1 above 0.5
        scores = np.hstack([0.5 - scores, scores - 0.5])
    if y_true.ndim > 1 and y_true.reshape(len(y_true), -1).shape[1] > 1:
        y_true = y_true.reshape(len(y_true), -1).argmax(axis=1)
    return y_true.reshape(-1).astype(np.int64), scores


def accuracy(y_true, y_pred):
    """Share of samples whose highest-scoring class (or probability > 0.5) is the label."""
    labels, scores = _labels_and_scores(y_true, y_pred)
    return float(np.mean(scores.argmax(axis=1) == labels))


def top_k_accuracy(k):
    """A metric: share of samples whose label is among the ``k`` highest scores."""
    k = int(k)
    if k < 1:
        raise ValueError(f"top-k accuracy needs k >= 1, got {k}")

    def metric(y_true, y_pred):
        labels, scores = _labels_and_scores(y_true, y_pred)
        kk = min(k, scores.shape[1])
        top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        return float(np.mean(np.any(top == labels[:, None], axis=1)))

    metric.__name__ = f"top_{k}_accuracy"
    return metric


def _pair(y_true, y_pred):
    y_pred = np.asarray(y_pred, dtype=np.float64)
    return np.asarray(y_true, dtype=np.float64).reshape(y_pred.shape), y_pred


def mae(y_true, y_pred):
    """Mean absolute error over all elements."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(p - t)))


def mse(y_true, y_pred):
    """Mean squared error over all elements."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean((p - t) ** 2))


def r2(y_true, y_pred):
    """Coefficient of determination, averaged uniformly over outputs (scikit-learn's r2_score)."""
    t, p = _pair(y_true, y_pred)
    t, p = t.reshape(len(t), -1), p.reshape(len(p), -1)
    residual = ((t - p) ** 2).sum(axis=0)
    total = ((t - t.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = np.where(total > 0, 1.0 - residual / np.where(total > 0, total, 1.0),
                          np.where(residual == 0, 1.0, 0.0))
    return float(scores.mean())


METRICS = {"accuracy": accuracy, "acc": accuracy, "mae": mae, "mse": mse, "r2": r2,
           "top_k_accuracy": top_k_accuracy(5)}
_TOP_K = re.compile(r"top_?(\d+)(_accuracy)?$")


def get_metric(metric):
    """``(name, function)`` for a metric name (``"top_3_accuracy"`` sets k) or a function."""
    if callable(metric):
        return getattr(metric, "__name__", type(metric).__name__), metric
    if not isinstance(metric, str):
        raise TypeError(f"a metric is a name or a function (y_true, y_pred) -> float, got {metric!r}")
    if metric in METRICS:
        return metric, METRICS[metric]
    match = _TOP_K.match(metric)
    if match:
        return metric, top_k_accuracy(int(match.group(1)))
    raise UnknownNameError(f"unknown metric {metric!r}; known metrics: accuracy, top_<k>_accuracy, mae, mse, r2, "
                           f"or pass a function (y_true, y_pred) -> float")
