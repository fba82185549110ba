"""Callbacks run at epoch ends of :func:`jitbp.training.learn`.

A compiled epoch stays one compiled call: callbacks see each epoch's end, after its
validation loss and metrics are computed. A callback is a :class:`Callback` or a
plain function ``(epoch, logs) -> bool``; returning true stops training after that
epoch. ``epoch`` is 1-based; ``logs`` is that epoch's record (``loss``, ``val_loss``,
metrics, ``lr``, ``seconds``).
"""
import math
import os

import numpy as np


class Callback:
    """Base class. Before training, ``net``, ``optimizer`` and ``history`` are set."""

    net = optimizer = history = None

    def on_train_begin(self):
        """Called once before the first epoch."""

    def on_epoch_end(self, epoch, logs):
        """Called after every epoch; return true to stop training."""
        return False

    def on_train_end(self):
        """Called once after the last epoch (also after a stop)."""


class FunctionCallback(Callback):
    """Wraps a function ``(epoch, logs) -> bool``."""

    def __init__(self, function):
        self.function = function

    def on_epoch_end(self, epoch, logs):
        return bool(self.function(epoch, logs))


def as_callbacks(callbacks):
    """A list of :class:`Callback` from ``None``, one callback or a list of them."""
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback) or callable(callbacks):
        callbacks = [callbacks]
    result = []
    for cb in callbacks:
        if isinstance(cb, Callback):
            result.append(cb)
        elif callable(cb):
            result.append(FunctionCallback(cb))
        else:
            raise TypeError(f"a callback is a jitbp.callbacks.Callback or a function (epoch, logs), got {cb!r}")
    return result


#: Monitored quantities that improve upwards in mode="auto".
MAXIMISED = ("acc", "r2", "auc", "score", "f1", "precision", "recall")


class _Monitored:
    """Tracks the best value of ``monitor`` (``mode`` min, max or auto)."""

    def __init__(self, monitor, mode, min_delta):
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be auto, min or max, got {mode!r}")
        self.monitor = monitor
        if mode == "auto":
            mode = "max" if any(word in monitor for word in MAXIMISED) else "min"
        self.mode = mode
        self.min_delta = abs(float(min_delta))
        self.best = None

    def value(self, logs):
        if self.monitor not in logs:
            known = ", ".join(k for k in logs if k not in ("epoch",))
            hint = " (pass validation= or validation_split= to learn)" if self.monitor.startswith("val_") else ""
            raise ValueError(f"{type(self).__name__} monitors {self.monitor!r}, which learn does not record"
                             f"{hint}; recorded: {known}")
        return float(logs[self.monitor])

    def improved(self, value):
        """Whether ``value`` beats the best by more than ``min_delta`` (and then keep it)."""
        if not math.isfinite(value):
            return False
        if self.best is None or (value < self.best - self.min_delta if self.mode == "min"
                                 else value > self.best + self.min_delta):
            self.best = value
            return True
        return False


class EarlyStopping(Callback, _Monitored):
    """Stop once ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs. With ``restore_best``, the network ends with the weights of its best epoch
    (the optimizer's state is that of the last epoch, as in Keras)."""

    def __init__(self, monitor="val_loss", patience=5, min_delta=0.0, mode="auto", restore_best=False):
        _Monitored.__init__(self, monitor, mode, min_delta)
        if isinstance(patience, bool) or not isinstance(patience, (int, np.integer)) or patience < 1:
            raise ValueError(f"patience must be an integer >= 1, got {patience!r}")
        self.patience = int(patience)
        self.restore_best = bool(restore_best)

    def on_train_begin(self):
        self.best, self.best_epoch, self.stale, self.stopped_epoch = None, None, 0, None
        self._saved = None

    def on_epoch_end(self, epoch, logs):
        if self.improved(self.value(logs)):
            self.best_epoch, self.stale = epoch, 0
            if self.restore_best:
                params = self.net.params
                if self._saved is None:
                    self._saved = {key: value.copy() for key, value in params.items()}
                else:
                    for key, value in params.items():
                        np.copyto(self._saved[key], value)
            return False
        self.stale += 1
        if self.stale >= self.patience:
            self.stopped_epoch = epoch
            self.history.stopped = (f"EarlyStopping: {self.monitor} did not improve for {self.patience} "
                                    f"epoch(s); best {self.best:.6g} at epoch {self.best_epoch}")
            return True
        return False

    def on_train_end(self):
        if self.restore_best and self._saved is not None:
            for key, value in self.net.params.items():
                np.copyto(value, self._saved[key])
            self.history.best_epoch = self.best_epoch


class ModelCheckpoint(Callback, _Monitored):
    """Save the network with :meth:`Network.save` (atomically: a temporary file renamed
    over ``path``) after each epoch, or with ``save_best_only`` after each epoch that
    improves ``monitor``. ``path`` may hold ``{epoch}`` and log keys, e.g.
    ``"model-{epoch:03d}-{val_loss:.3f}.jitbp"``. ``save_optimizer`` stores its state too."""

    def __init__(self, path, monitor="val_loss", save_best_only=True, mode="auto", min_delta=0.0,
                 save_optimizer=False):
        _Monitored.__init__(self, monitor, mode, min_delta)
        self.path = os.fspath(path)
        self.save_best_only = bool(save_best_only)
        self.save_optimizer = bool(save_optimizer)
        #: Paths written so far, in order.
        self.saved = []

    def on_train_begin(self):
        self.best = None

    def on_epoch_end(self, epoch, logs):
        if self.save_best_only and not self.improved(self.value(logs)):
            return False
        path = self.path.format(epoch=epoch, **{k: v for k, v in logs.items() if k != "epoch"})
        self.net.save(path, self.optimizer if self.save_optimizer else None)
        self.saved.append(path)
        return False
