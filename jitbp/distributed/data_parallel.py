"""``DataParallel``: what ``learn(..., parallel=...)`` runs on each rank of an MPI job."""
import math

import numpy as np

from .. import checks
from ..capture import CAPTURE_MIN_STEPS, capture_mode
from ..divergence import Checkpoint
from ..errors import DivergenceError
from ..history import History
from ..training import Plateau, learn_arguments
from .agreement import broadcast_start, check_agreement, fingerprint
from .comm import Communicator
from .gradients import BUCKET_BYTES, GradientSync
from .weights import WeightSync

SYNC_MODES = ("gradients", "weights")


class DataParallel:
    """Data-parallel training over the ranks of an MPI communicator (``mpiexec -n N``).

    Every rank passes the same arrays; each trains its slice of every global batch
    (the batches a single process would train, in its order). ``sync="gradients"``
    sums the slices' gradients every step: the same weights as one process on the
    combined batch, for every optimizer. ``sync="weights"`` trains the slices with the
    fused kernels and combines weights and optimizer state every ``every`` steps (and
    at each epoch's end). ``timeout`` bounds, in seconds, every wait for the other ranks.
    """

    def __init__(self, sync="gradients", every=1, comm=None, timeout=300.0, bucket_bytes=BUCKET_BYTES):
        if sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {', '.join(SYNC_MODES)}, got {sync!r}")
        self.sync = sync
        self.every = checks.positive_int("every", every)
        if sync == "gradients" and self.every != 1:
            raise ValueError('every applies to sync="weights"; sync="gradients" synchronises every step')
        self.timeout = float(timeout)
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.bucket_bytes = checks.positive_int("bucket_bytes", bucket_bytes)
        self.comm = Communicator(comm, self.timeout)

    @property
    def rank(self):
        return self.comm.rank

    @property
    def size(self):
        return self.comm.size

    @property
    def root(self):
        """True on rank 0, the rank that writes files and prints progress."""
        return self.comm.rank == 0

    def settings(self):
        return {"sync": self.sync, "every": self.every, "ranks": self.size, "bucket_bytes": self.bucket_bytes}

    def learn(self, net, X, Y, loss="mse", optimizer=None, epochs=1, batch_size=None, shuffle=True, seed=None,
              tol=None, patience=5):
        """:func:`jitbp.training.learn` on every rank at once; the history is the global one."""
        if net.device != "cpu":
            raise ValueError(f"DataParallel trains CPU networks; this one is on {net.device!r}")
        loss, optimizer, epochs, batch_size, patience, tol, shuffle, seed, inputs, target = learn_arguments(
            net, X, Y, loss, optimizer, epochs, batch_size, patience, tol, shuffle, seed)
        n = len(target)
        size = n if batch_size is None else min(batch_size, n)
        settings = {"loss": loss.name, "optimizer": repr(optimizer), "epochs": epochs, "batch_size": size,
                    "shuffle": shuffle, "seed": seed, "tol": tol, "patience": patience, **self.settings()}
        check_agreement(self.comm, fingerprint(net, inputs, target, settings))
        shuffled = shuffle and size < n
        if seed is None:  # one draw, shared: every rank walks the same order and draws the same masks
            seed = self.comm.bcast(int(np.random.SeedSequence().entropy % 2**63))
        rng = np.random.default_rng(seed) if shuffled else None
        broadcast_start(self.comm, net, optimizer)
        runner = self._runner(net, optimizer, loss, epochs * -(-n // size), seed)
        checkpoint = Checkpoint(net, optimizer, n)
        history, plateau = History(), Plateau(tol, patience)
        for epoch in range(epochs):
            order = rng.permutation(n) if shuffled else np.arange(n)
            total, failed_batch, value = runner.epoch(inputs, target, order, size)
            if failed_batch is not None:
                loss.check(value)
                raise self._diverged(runner, checkpoint, epoch, failed_batch, value, history)
            history.record(loss=total)
            if epoch + 1 == checkpoint.due and epoch + 1 < epochs:
                checkpoint.verify(epoch + 1, history)
            history.stopped = plateau.stop(total)
            if history.stopped:
                break
        checkpoint.verify(len(history), history, final=True)
        net.trained_loss = loss.name  # what predict_proba reads, as after a one-process learn
        return history

    def _runner(self, net, optimizer, loss, steps, seed):
        if self.sync == "gradients":
            return GradientSync(self.comm, net, optimizer, loss, seed, self.bucket_bytes)
        mode = capture_mode()
        capture = mode == "always" or (mode == "auto" and steps >= CAPTURE_MIN_STEPS)
        return WeightSync(self.comm, net, optimizer, loss, self.every, capture, seed)

    @staticmethod
    def _diverged(runner, checkpoint, epoch, batch, value, history):
        restored = getattr(runner, "restored_before", batch)
        if restored == batch:
            return checkpoint.loss_diverged(epoch, batch, value, history)
        return DivergenceError(
            f"loss became {value} at epoch {epoch + 1}, batch {batch + 1} on some rank; every rank is back at "
            f"the last synchronisation, before batch {restored + 1} (sync='weights', every={runner.every}).",
            epoch=epoch + 1, batch=batch + 1, restored_epoch=epoch, history=history)

    def save(self, net, path, optimizer=None):
        """Write the model once, from rank 0; every rank returns when it is written (or raises if not)."""
        error = None
        if self.root:
            try:
                net.save(path, optimizer)
            except Exception as exc:  # the other ranks must hear of it, not wait for it
                error = exc
        failed = self.comm.broadcast(np.array([error is not None], np.int8), "waiting for rank 0 to save")
        if failed[0]:
            if error is not None:
                raise error
            raise OSError(f"rank 0 could not save the model to {path!r}; see its error")
