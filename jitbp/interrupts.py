"""Batch boundaries: whatever stops ``learn``, every layer and optimizer state are at one step.

A step (forward, loss, then the layers' backward kernels, each updating its own
weights) is not atomic: Ctrl-C between two backward kernels would leave the first
layers one step ahead of the others, and a captured epoch's step counts are recorded
after it returns. So while ``learn`` runs, SIGINT only sets a flag (in the main thread,
when Python's own handler is installed; the previous handler is put back afterwards);
the engines stop at the next batch boundary and :class:`TrainingInterrupted` is raised
there. Any other exception from inside a step rolls the model back to the divergence
checkpoint. Every exception leaving ``learn`` says how many batches of the call the
model holds.
"""
import signal
import threading

from .errors import DivergenceError, TrainingInterrupted


class BatchBoundary:
    """Defers SIGINT during ``learn`` and counts the batches applied (a context manager).

    Engines read ``pending`` between batches and stop before the next one when it is set.
    """

    def __init__(self, checkpoint, batches_per_epoch, history):
        self.checkpoint = checkpoint
        self.batches_per_epoch = batches_per_epoch
        self.history = history
        #: Batches of this ``learn`` call in the parameters and optimizer state.
        self.applied = 0
        #: Set by a deferred SIGINT; the engines stop at the next batch boundary.
        self.pending = False
        self._in_epoch = False
        self._previous = None

    def __enter__(self):
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._defer)
        return self

    def _defer(self, signum, frame):
        self.pending = True

    def epoch(self, train_epoch, *args):
        """``train_epoch(*args, self)``, counted; raises at its boundary if interrupted."""
        self._raise_pending()
        self._in_epoch = True
        total, stopped, value = train_epoch(*args, self)
        self._in_epoch = False
        self.applied += self.batches_per_epoch if stopped is None else stopped
        if stopped is not None and value is None:
            self._raise_pending()
        return total, stopped, value

    def _raise_pending(self):
        if self.pending:
            self.pending = False
            raise TrainingInterrupted(self.applied, self.history)

    def __exit__(self, kind, error, traceback):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        if error is None:
            self._raise_pending()  # a Ctrl-C during the last batch: learn is complete
            return False
        if isinstance(error, TrainingInterrupted):
            return False
        if self._in_epoch and not self._roll_back():
            error.batches_applied = None
            _add_note(error, "jitbp: the exception came from inside a training step and the model is too large for "
                           "a divergence checkpoint, so layers may be at different steps: reload a saved model")
            return False
        if isinstance(error, DivergenceError) and error.restored_epoch is not None:
            self.applied = error.restored_epoch * self.batches_per_epoch
        error.batches_applied = self.applied
        _add_note(error, f"jitbp: {self.applied} batch(es) of this learn call were applied; every layer and the "
                       f"optimizer state are at that batch boundary")
        return False

    def _roll_back(self):
        """After an exception from inside a step, restore the checkpoint; ``False`` if there is none."""
        if self.checkpoint.saved is None:
            return False
        self.checkpoint.restore()
        self.applied = self.checkpoint.epoch * self.batches_per_epoch
        return True


def _add_note(error, text):
    """What Python 3.11's ``error.add_note(text)`` does; 3.10 has no add_note (nor prints notes)."""
    error.__notes__ = [*getattr(error, "__notes__", ()), text]
