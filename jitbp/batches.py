"""Training data that is not held in memory: ``np.memmap`` inputs and sources of batches.

:func:`stream` turns ``learn``'s ``X, Y`` into a :class:`Stream` when the data is one of

- ``np.memmap`` arrays (any input, or the targets): every epoch draws one permutation of
  all rows (from ``seed``, as in-memory training does) and gathers each batch from those
  rows of the whole file, so shuffling spans the array while only a batch is in memory;
- ``Y=None`` and ``X`` a source of ``(X, Y)`` batches: a function returning a fresh
  iterable per epoch, an iterable that can be iterated again (a list, a dataset object),
  or a one-shot iterator or generator, which trains one epoch and then stops training
  with a :class:`OneShotBatchesWarning`. Batches are trained in the order given.

Each batch is checked (shape, dtype, NaN/inf) as it arrives, with an error naming the
batch and epoch, and trained as one step of the network's engine (captured or
interpreted), so the weights equal those of in-memory training on the same batches.
"""
import warnings

import numpy as np

from . import checks
from .errors import ShapeError


class OneShotBatchesWarning(UserWarning):
    """A one-shot iterator of batches was given for more than one epoch."""


def _is_memmap(data):
    return isinstance(data, np.memmap) or (isinstance(data, (list, tuple)) and
                                           any(isinstance(x, np.memmap) for x in data))


def stream(net, X, Y, loss, batch_size, shuffle, seed):
    """A :class:`Stream` for memmap data or a batch source, else ``None`` (arrays in memory)."""
    if Y is None:
        if isinstance(X, (np.ndarray, str, bytes)) or not (callable(X) or hasattr(X, "__iter__")):
            raise TypeError("Y is None, so X must be a source of (X, Y) batches: a function returning an "
                            f"iterable of them, or an iterable; got {type(X).__name__}")
        if batch_size is not None:
            raise ValueError("a source of batches sets their sizes; leave batch_size=None")
        return SourceStream(net, loss, X)
    if _is_memmap(X) or isinstance(Y, np.memmap):
        return MemmapStream(net, loss, X, Y, batch_size, shuffle, seed)
    return None


def _checked(net, loss, X, Y, where):
    """One batch as (input arrays, target), or the check's error with ``where`` in front."""
    try:
        xs = checks.inputs(net, X)
        return xs, checks.targets(net, Y, loss, len(xs[0]))
    except (TypeError, ValueError) as error:
        raise type(error)(f"{where}: {error}") from None


class Stream:
    """Batches of one epoch at a time, trained through ``engine.train_epoch`` one by one."""

    #: Samples and batches per epoch (``None`` until a source's first epoch ends).
    samples = batches = None

    def train_epoch(self, epoch, engine, loss, updates, capture, schedule, first_step, interrupt):
        """One epoch, returned as :meth:`jitbp.engine.Engine.train_epoch` returns it."""
        totals, sizes = [], []
        for k, (xs, t) in enumerate(self.epoch(epoch)):
            if interrupt is not None and interrupt.pending:
                return self._total(loss, totals, sizes), k, None
            rates = {} if schedule is None else {"lrs": schedule.rates(first_step + k, 1)}  # CPU engine only
            value, failed, bad = engine.train_epoch(xs, t, None, len(t), loss, updates, capture, **rates)
            if failed is not None:
                return self._total(loss, totals, sizes), k, bad
            totals.append(value)
            sizes.append(len(t))
        if interrupt is not None:
            interrupt.batches_per_epoch = len(sizes)  # counted after the epoch returns
        self.batches = len(sizes)
        return self._total(loss, totals, sizes), None, None

    def _total(self, loss, totals, sizes):
        n = sum(sizes) or 1
        total = 0.0
        for value, size in zip(totals, sizes):  # in-memory training's sum, batch by batch
            total += value * size / n if loss.mean else value
        return total


class MemmapStream(Stream):
    """Batches gathered from random rows of memmap inputs (or targets)."""

    def __init__(self, net, loss, X, Y, batch_size, shuffle, seed):
        self.net, self.loss = net, loss
        self.inputs = list(X) if isinstance(X, (list, tuple)) else [X]
        if len(self.inputs) != len(net.inputs):
            raise ShapeError(f"this network has {len(net.inputs)} inputs: pass X as a list of "
                                    f"that many arrays")
        self.target = Y
        lengths = {len(x) for x in self.inputs} | {len(Y)}
        if len(lengths) != 1:
            raise ShapeError(f"X and Y have different numbers of samples: {sorted(lengths)}")
        self.samples = n = lengths.pop()
        if n == 0:
            raise ValueError("X is empty (0 samples)")
        self.size = n if batch_size is None else min(batch_size, n)
        self.batches = -(-n // self.size)
        self.rng = np.random.default_rng(seed) if shuffle and self.size < n else None
        _checked(net, loss, [x[:1] for x in self.inputs] if len(self.inputs) > 1 else self.inputs[0][:1],
                 Y[:1], "the first sample")  # shapes and dtypes before any kernel runs

    def epoch(self, epoch):
        n, size = self.samples, self.size
        order = self.rng.permutation(n) if self.rng is not None else None
        for k, start in enumerate(range(0, n, size)):
            rows = slice(start, min(start + size, n)) if order is None else order[start:start + size]
            xs = [x[rows] for x in self.inputs]
            yield _checked(self.net, self.loss, xs if len(xs) > 1 else xs[0], self.target[rows],
                           f"batch {k} of epoch {epoch + 1}")


class SourceStream(Stream):
    """Batches from a function, a re-iterable or a one-shot iterator of ``(X, Y)`` pairs."""

    def __init__(self, net, loss, source):
        self.net, self.loss, self.source = net, loss, source
        self.one_shot = not callable(source) and iter(source) is source
        self.exhausted = False

    def epoch(self, epoch):
        if self.one_shot and epoch > 0:
            self.exhausted = True
            warnings.warn("X is a one-shot iterator (a generator?) and was used up by the first epoch, so "
                          "training stops there: pass a function returning a fresh iterator per epoch "
                          "(e.g. lambda: batches()) or a list", OneShotBatchesWarning, stacklevel=7)
            return
        items = self.source() if callable(self.source) else self.source
        if not hasattr(items, "__iter__"):
            raise TypeError(f"the batch source returned {type(items).__name__}, not an iterable of (X, Y)")
        count = 0
        for k, item in enumerate(items):
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise TypeError(f"batch {k} of epoch {epoch + 1} is a {type(item).__name__}, not an (X, Y) pair")
            count += 1
            yield _checked(self.net, self.loss, item[0], item[1], f"batch {k} of epoch {epoch + 1}")
        if count == 0:
            raise ValueError(f"the batch source gave no batches in epoch {epoch + 1}")
