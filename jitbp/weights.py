"""``sample_weight`` and ``class_weight`` for :func:`jitbp.training.learn`.

The weights are checked before any kernel runs, combined into one float per sample
(``sample_weight[i] * class_weight[label_i]``) and carried to the loss kernel as an
extra target column: the loss's weighted twin (:meth:`jitbp.losses.Loss.weighted`)
reads it, so the interpreted and the captured engines batch and shuffle the weights
with the targets, unchanged.
"""
import numbers

import numpy as np


def _vector(name, values, n):
    array = np.asarray(values)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise TypeError(f"{name} must be numbers, got dtype {array.dtype}")
    if array.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), one weight per sample, got {array.shape}")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite")
    if np.any(array < 0):
        raise ValueError(f"{name} must be non-negative")
    return array


def _class_weights(loss, class_weight, target):
    if not loss.labels:
        raise ValueError(f"class_weight needs a loss on class labels (cross_entropy), not {loss.name!r}; "
                         f"use sample_weight")
    if isinstance(class_weight, dict):
        per_class = {}
        for label, weight in class_weight.items():
            if isinstance(label, bool) or not isinstance(label, numbers.Integral):
                raise TypeError(f"class_weight keys must be integer class labels, got {label!r}")
            if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not np.isfinite(weight) \
                    or weight < 0:
                raise ValueError(f"class_weight[{label}] must be a finite non-negative number, got {weight!r}")
            per_class[int(label)] = float(weight)
        return np.array([per_class.get(int(label), 1.0) for label in target])
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(f"class_weight must be a dict, 'balanced' or None, got {class_weight!r}")
        labels, counts = np.unique(target, return_counts=True)
        weights = dict(zip(labels.tolist(), (len(target) / (len(labels) * counts)).tolist()))
        return np.array([weights[int(label)] for label in target])
    raise TypeError(f"class_weight must be a dict {{label: weight}}, 'balanced' or None, got "
                    f"{type(class_weight).__name__}")


def per_sample(loss, target, sample_weight=None, class_weight=None):
    """One float64 weight per sample of ``target``, or ``None`` when both are ``None``."""
    if sample_weight is None and class_weight is None:
        return None
    n = len(target)
    weights = np.ones(n) if sample_weight is None else _vector("sample_weight", sample_weight, n)
    if class_weight is not None:
        weights = weights * _class_weights(loss, class_weight, target)
    if n and not np.any(weights > 0):
        raise ValueError("sample_weight and class_weight give every sample a weight of zero: nothing to train on")
    if loss.weighted_kernel is None:
        loss.weighted()  # raises: the loss has no weighted kernel
    return weights


def packed(loss, target, weights):
    """``(loss, target)`` to train on: unchanged without weights, else the weighted twin of
    ``loss`` and the target with the weights appended as a last column."""
    if weights is None:
        return loss, target
    n = len(target)
    if loss.labels:
        return loss.weighted(), np.column_stack([target.astype(np.float64), weights])
    flat = target.reshape(n, -1)
    return loss.weighted(), np.ascontiguousarray(np.column_stack([flat, weights.astype(flat.dtype)]))
