"""``History``: what :func:`jitbp.training.learn` returns.

It *is* the list of epoch training losses (a ``list`` subclass, so existing code that
compares, indexes or slices it keeps working) and also records, per epoch, the
validation loss, metrics, learning rate and seconds in :attr:`History.history`
(Keras's layout: ``{"loss": [...], "val_loss": [...], "accuracy": [...], ...}``).
"""
import numpy as np

PLOT_EXTRA = "plot"


class History(list):
    """Epoch losses, plus per-epoch records in ``history`` (a dict of equal-length lists)."""

    def __init__(self, losses=()):
        super().__init__(losses)
        self.history = {"loss": list(losses)}
        #: Set by :class:`jitbp.callbacks.EarlyStopping` with ``restore_best``: the epoch
        #: (1-based) whose weights the network holds after training.
        self.best_epoch = None
        #: Why training stopped early (a callback's or ``tol``'s reason), or ``None``.
        self.stopped = None
        #: The seed of the run (``learn(seed=...)`` or the one drawn from the OS): passing
        #: it again repeats the shuffling and the layers' random streams.
        self.seed = None

    def record(self, **values):
        """Append one epoch: ``loss`` goes into the list too; other keys into ``history``."""
        epoch = len(self)
        self.append(values["loss"])
        for key, value in values.items():
            column = self.history.setdefault(key, [])
            if key != "loss":
                column.extend([np.nan] * (epoch - len(column)))
                column.append(value)
            else:
                column.append(value)

    @property
    def epochs(self):
        """Per-epoch dicts: ``[{"epoch": 1, "loss": ..., "val_loss": ...}, ...]``."""
        keys = list(self.history)
        return [{"epoch": k + 1, **{key: self.history[key][k] for key in keys if k < len(self.history[key])}}
                for k in range(len(self))]

    def last(self):
        """The last epoch's record (``{}`` before any)."""
        return self.epochs[-1] if len(self) else {}

    def plot(self, keys=None, ax=None, path=None, logy=None):
        """Plot the curves (``keys``: default every loss and metric) on ``ax`` (a new
        figure by default), saving to ``path`` if given; returns the axes. Needs
        matplotlib: ``pip install jitbp[plot]``."""
        try:
            import matplotlib
            if ax is None and path is not None:
                matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError(f"History.plot needs matplotlib: pip install 'jitbp[{PLOT_EXTRA}]' "
                              f"(or pip install matplotlib)") from None
        if keys is None:
            keys = [k for k in self.history if k not in ("lr", "seconds")]
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        epochs = np.arange(1, len(self) + 1)
        for key in keys:
            values = np.asarray(self.history[key], dtype=float)
            ax.plot(epochs[:len(values)], values, label=key, marker="." if len(values) < 30 else None)
        if self.best_epoch is not None:
            ax.axvline(self.best_epoch, color="grey", linestyle=":", label=f"best epoch ({self.best_epoch})")
        losses = [np.asarray(self.history[k], float) for k in keys if k.endswith("loss")]
        if logy is None:
            positive = [v[np.isfinite(v)] for v in losses]
            logy = bool(positive) and all(len(v) and v.min() > 0 for v in positive) and max(
                v.max() / v.min() for v in positive) > 20
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.legend()
        ax.grid(True, alpha=0.3)
        if path is not None:
            ax.figure.tight_layout()
            ax.figure.savefig(path, dpi=100)
        return ax

    def __repr__(self):
        extra = [k for k in self.history if k != "loss"]
        return f"History({list.__repr__(self)}{', with ' + ', '.join(extra) if extra else ''})"
