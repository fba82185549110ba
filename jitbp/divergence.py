"""Divergence recovery: a checkpoint of the last parameters, layer state buffers and
optimizer state verified finite while the loss was not exploding.

See :class:`jitbp.errors.DivergenceError` for the design and its costs.
"""
import math

import numpy as np

from .checks import first_non_finite
from .errors import DivergenceError

#: Samples trained between two checks of every weight (at an epoch boundary). A check
#: is two passes over the parameters and optimizer slots plus ~3 us per array, about
#: what one or two samples' steps cost, so this keeps it near or under half a percent.
CHECK_SAMPLES = 512
#: Largest checkpoint (parameters plus optimizer slots) kept. Bigger models are still
#: checked, but not copied: the copy would double or triple their memory, so a
#: rollback is impossible there and the error says so.
CHECKPOINT_MAX_BYTES = 64 * 2**20
#: A checkpoint is refreshed only while the loss is not exploding: the last epoch's loss
#: is at most this many times the lowest earlier epoch loss of the call. Weights a few
#: steps before an inf loss are finite but can be as large as 1e300; refusing them keeps
#: the checkpoint (at worst the start of the call) one that training can resume from.
MAX_LOSS_RISE = 2.0


class Checkpoint:
    """Copies of ``net``'s parameters and ``optimizer``'s state, refreshed while finite."""

    def __init__(self, net, optimizer, samples_per_epoch):
        self.params = net.params
        self.states = net.states
        self.optimizer = optimizer
        self.every = max(1, math.ceil(CHECK_SAMPLES / samples_per_epoch))
        size = (sum(value.nbytes for value in self.params.values()) * (1 + optimizer.n_slots)
                + sum(value.nbytes for value in self.states.values()))
        self.saved = ({key: np.empty_like(value) for key, value in self.params.items()}
                      if size <= CHECKPOINT_MAX_BYTES else None)
        self.saved_states = ({key: np.empty_like(value) for key, value in self.states.items()}
                             if self.saved is not None else None)
        self.slots = {}
        self.steps = {}
        self.epoch = 0
        #: The lowest epoch loss among the first ``seen`` epochs (see :meth:`calm`).
        self.lowest, self.seen = math.inf, 0
        #: The epoch after which :meth:`verify` is next due.
        self.due = self.every
        bad = self.non_finite()
        if bad:
            raise ValueError(f"{bad} contains NaN or inf before training; re-initialise or reload the network")
        self.take(0)

    def non_finite(self):
        """The name of the first parameter or optimizer slot that is not finite, or ``None``."""
        names, arrays = [], []
        for key, value in self.params.items():
            names.append(f"parameter {key}")
            arrays.append(value)
            state = self.optimizer.state_of(value)
            if state is not None:
                names.append(f"optimizer state of {key}")
                arrays.append(state[0])
        for key, value in self.states.items():
            names.append(f"state buffer {key}")
            arrays.append(value)
        bad = first_non_finite(arrays)
        return None if bad is None else names[bad]

    def take(self, epoch):
        """Copy the current (verified) parameters and state as those after ``epoch``."""
        for key, value in self.params.items() if self.saved is not None else ():
            np.copyto(self.saved[key], value)
            state = self.optimizer.state_of(value)
            self.steps[key] = None if state is None else state[1]
            if state is not None:
                if self.slots.get(key) is None or self.slots[key].shape != state[0].shape:
                    self.slots[key] = np.empty_like(state[0])
                np.copyto(self.slots[key], state[0])
        for key, value in self.states.items() if self.saved is not None else ():
            np.copyto(self.saved_states[key], value)
        self.epoch = epoch
        self.due = epoch + self.every

    def restore(self):
        """Put the checkpointed parameters and optimizer state back, in place; raise if
        the model was too large to keep a checkpoint."""
        if self.saved is None:
            raise DivergenceError(
                f"parameters or optimizer state became NaN or inf after epoch {self.epoch} of this call "
                f"and could not be restored: the model is larger than jitbp.divergence."
                f"CHECKPOINT_MAX_BYTES ({CHECKPOINT_MAX_BYTES // 2**20} MiB), so no copy was kept. "
                f"Reload a saved model. {_advice(self.optimizer)}", restored_epoch=None)
        for key, value in self.params.items():
            np.copyto(value, self.saved[key])
            if self.steps[key] is None:
                self.optimizer.forget(value)
            else:
                self.optimizer.set_state(value, self.slots[key], self.steps[key])
        for key, value in self.states.items():
            np.copyto(value, self.saved_states[key])

    def verify(self, epoch, history, final=False):
        """After ``epoch`` (when due, and ``final``-ly at the end): checkpoint if finite and
        the loss is not exploding (no copy at the end: nothing can roll back to it), else
        roll back and raise."""
        if epoch == self.epoch:
            return
        bad = self.non_finite()
        if bad is None:
            if not final and self.calm(history):
                self.take(epoch)
            self.due = epoch + self.every
            return
        self.restore()
        raise DivergenceError(
            f"{bad} became NaN or inf during epochs {self.epoch + 1}-{epoch} while the loss stayed "
            f"finite; parameters and optimizer state were restored to those after epoch {self.epoch} "
            f"of this call. {_advice(self.optimizer)}",
            epoch=epoch, restored_epoch=self.epoch, history=history[:self.epoch])

    def calm(self, history):
        """Whether the last epoch loss in ``history`` shows no explosion (:data:`MAX_LOSS_RISE`
        times the lowest earlier one); the first epoch has nothing to compare with."""
        earlier = history[self.seen:-1]
        if earlier:
            self.lowest = min(self.lowest, min(earlier))
        self.seen = max(self.seen, len(history) - 1)
        return self.lowest < math.inf and history[-1] <= MAX_LOSS_RISE * self.lowest

    def loss_diverged(self, epoch, batch, value, history):
        """The error for a non-finite loss at ``batch`` of ``epoch`` (both 0-based), after
        rolling back to the checkpoint: the weights before that batch are finite but may be
        so large that the loss is already inf there."""
        where = f"loss became {value} at epoch {epoch + 1}, batch {batch + 1}"
        bad = self.non_finite()
        if bad is None and self.saved is None:
            return DivergenceError(
                f"{where}; that batch was not applied, but the parameters before it may be too large to "
                f"resume from, and the model is larger than jitbp.divergence.CHECKPOINT_MAX_BYTES "
                f"({CHECKPOINT_MAX_BYTES // 2**20} MiB), so no checkpoint was kept. Reload a saved model. "
                f"{_advice(self.optimizer)}", epoch=epoch + 1, batch=batch + 1, history=history)
        self.restore()
        already = "" if bad is None else f" and {bad} was already NaN or inf"
        return DivergenceError(
            f"{where}{already}; parameters and optimizer state were restored to those after epoch "
            f"{self.epoch} of this call, the last checkpoint whose loss was finite and not exploding. "
            f"{_advice(self.optimizer)}",
            epoch=epoch + 1, batch=batch + 1, restored_epoch=self.epoch, history=history[:self.epoch])


def _advice(optimizer):
    return f"Try a smaller learning rate (lr={optimizer.lr:g})."
