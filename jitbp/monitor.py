"""Epoch-end bookkeeping for :func:`jitbp.training.learn`: validation data, metrics,
callbacks, progress output and the :class:`~jitbp.history.History` it returns.

Nothing here runs inside an epoch: validation loss and metrics are computed after
each epoch with :meth:`Network.loss` / :meth:`Network.predict`, so a captured epoch
stays one compiled call, and a call with none of these options costs one clock read
per epoch.
"""
import numbers
import time
import warnings

import numpy as np

from . import checks
from .callbacks import as_callbacks
from .history import History
from .metrics import get_metric
from .progress import Progress


class DoubleSoftmaxWarning(UserWarning):
    """A softmax layer feeds loss="cross_entropy", which applies softmax itself."""


def check_output_layer(net, loss):
    """Warn when the network ends in softmax and the loss is cross_entropy (softmax twice)."""
    if loss.name == "cross_entropy" and getattr(net.output.layer, "kind", None) == "softmax":
        warnings.warn(
            "the network ends with a softmax layer and loss='cross_entropy' applies softmax to its "
            "input (it takes logits), so softmax is applied twice: gradients shrink and training stalls. "
            "Remove the final softmax layer; use net.predict_proba(X) for probabilities.",
            DoubleSoftmaxWarning, stacklevel=5)


def _split_fraction(value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 < value < 1.0:
        raise ValueError(f"validation_split must be a number in (0, 1), got {value!r}")
    return float(value)


class Monitor:
    """One learn() call's history, validation, metrics, callbacks and progress."""

    def __init__(self, net, loss, optimizer, epochs, validation=None, validation_split=None,
                 metrics=None, callbacks=None, verbose=None):
        check_output_layer(net, loss)
        self.net, self.loss, self.optimizer, self.epochs = net, loss, optimizer, epochs
        self.split = _split_fraction(validation_split)
        if validation is not None and self.split is not None:
            raise ValueError("pass validation=(X_val, Y_val) or validation_split=, not both")
        if validation is not None:
            if not isinstance(validation, (tuple, list)) or len(validation) != 2:
                raise TypeError("validation must be a pair (X_val, Y_val)")
            xv = checks.inputs(net, validation[0])
            self.validation = (xv, checks.targets(net, validation[1], loss, len(xv[0])))
        else:
            self.validation = None
        if metrics is not None and (isinstance(metrics, str) or callable(metrics)):
            metrics = [metrics]
        self.metrics = [get_metric(m) for m in (metrics or ())]
        self.callbacks = as_callbacks(callbacks)
        self.history = History()
        self.progress = Progress(epochs, verbose)
        net.trained_loss = loss.name  # what predict_proba reads

    def train_data(self, inputs, target):
        """The training part of ``(inputs, target)``: all of it, or all but the last
        ``validation_split`` share of samples (before any shuffling, as in Keras)."""
        if self.split is None:
            return inputs, target
        n = len(target)
        n_val = int(round(n * self.split))
        if n_val < 1 or n_val >= n:
            raise ValueError(f"validation_split={self.split} of {n} samples leaves "
                             f"{n - n_val} to train and {n_val} to validate; both need at least one")
        self.validation = ([x[n - n_val:] for x in inputs], target[n - n_val:])
        return [x[:n - n_val] for x in inputs], target[:n - n_val]

    def start(self):
        """Before the first epoch: hand the callbacks the network, optimizer and history."""
        for cb in self.callbacks:
            cb.net, cb.optimizer, cb.history = self.net, self.optimizer, self.history
            cb.on_train_begin()
        self.clock = time.perf_counter()

    def _values(self, inputs, target, prefix, logs):
        if prefix:
            logs[prefix + "loss"] = self.net.loss(inputs if len(inputs) > 1 else inputs[0], target, self.loss)
        if self.metrics:
            pred = self.net.predict(inputs if len(inputs) > 1 else inputs[0])
            for name, metric in self.metrics:
                logs[prefix + name] = float(metric(target, pred))

    def epoch_end(self, epoch, total, inputs, target):
        """Record epoch ``epoch`` (0-based) with training loss ``total``; true to stop.
        ``inputs=None`` (data streamed from memmaps or a batch source): metrics on the
        validation data only."""
        logs = {"loss": total}
        if self.metrics and inputs is not None:
            self._values(inputs, target, "", logs)
        if self.validation is not None:
            self._values(*self.validation, "val_", logs)
        logs["lr"] = float(self.optimizer.lr)
        now = time.perf_counter()
        logs["seconds"], self.clock = now - self.clock, now
        self.history.record(**logs)
        self.progress.epoch_end(epoch + 1, logs)
        stop = False
        for cb in self.callbacks:
            stop = bool(cb.on_epoch_end(epoch + 1, dict(logs))) or stop
        return stop

    def finish(self):
        """After the last epoch: end callbacks (restoring best weights) and progress."""
        for cb in self.callbacks:
            cb.on_train_end()
        self.progress.close(self.history.stopped)
        return self.history
