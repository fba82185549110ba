"""The training loop: epochs of online, mini-batch or full-batch steps."""
import math
import secrets

import numpy as np

from . import batches, checks, weights
from .capture import CAPTURE_MIN_STEPS, capture_mode
from .divergence import CHECK_SAMPLES, Checkpoint
from .interrupts import BatchBoundary
from .losses import get_loss
from .monitor import Monitor
from .optim import SGD
from .schedules import per_step_schedule


def learn_settings(net, loss, optimizer, epochs, batch_size, patience, tol, shuffle, seed):
    """``learn``'s arguments other than the data, checked and normalised before any kernel runs."""
    loss = get_loss(loss)
    optimizer = checks.optimizer(SGD(lr=0.01) if optimizer is None else optimizer)
    epochs = checks.positive_int("epochs", epochs, minimum=0)
    batch_size = checks.positive_int("batch_size", batch_size, allow_none=True)
    patience = checks.positive_int("patience", patience)
    tol = checks.tolerance(tol)
    shuffle = checks.flag("shuffle", shuffle)
    seed = checks.seed(seed)
    checks.parameters(net)
    checks.writable_parameters(net)
    return loss, optimizer, epochs, batch_size, patience, tol, shuffle, seed


def learn_arguments(net, X, Y, loss, optimizer, epochs, batch_size, patience, tol, shuffle, seed):
    """``learn``'s arguments checked and normalised before any kernel runs: the loss and
    optimizer objects, the numbers, and the inputs and targets as arrays."""
    settings = learn_settings(net, loss, optimizer, epochs, batch_size, patience, tol, shuffle, seed)
    inputs = checks.inputs(net, X)
    return (*settings, inputs, checks.targets(net, Y, settings[0], len(inputs[0])))


class Plateau:
    """``learn``'s ``tol``/``patience`` rule, shared with :mod:`jitbp.distributed`: stop once
    the epoch loss has not improved by more than ``tol`` for ``patience`` epochs."""

    def __init__(self, tol, patience):
        self.tol, self.patience = tol, patience
        self.best, self.stale = math.inf, 0

    def stop(self, total):
        """The reason to stop after an epoch of loss ``total``, or ``None`` to go on."""
        if self.tol is None:
            return None
        if self.best - total > self.tol:
            self.best, self.stale = total, 0
            return None
        self.stale += 1
        if self.stale < self.patience:
            return None
        return (f"tol: the training loss did not improve by more than {self.tol:g} for {self.patience} "
                f"epoch(s); best {self.best:.6g}")


def learn(net, X, Y=None, loss="mse", optimizer=None, epochs=1, batch_size=None, shuffle=True, seed=None,
          tol=None, patience=5, validation=None, validation_split=None, metrics=None, callbacks=None,
          verbose=None, parallel=None, sample_weight=None, class_weight=None):
    """Train ``net`` in place and return the loss of each epoch as a :class:`~jitbp.history.History`.

    ``batch_size=None`` trains on the full batch, ``1`` online, ``k`` on mini-batches
    (the last one may be partial). With ``shuffle`` the sample order of each epoch is
    drawn from ``seed``, which also keys the random streams of the layers (dropout
    masks): a run with the same seed repeats bit for bit. ``seed=None`` draws one from
    the OS, recorded as ``History.seed``. An epoch's loss is the loss over its batches as they were
    trained (summed for sum losses, averaged over samples for mean losses). With
    ``tol``, training stops once the epoch loss has not improved by more than ``tol``
    for ``patience`` epochs. A non-finite loss stops training with
    :class:`DivergenceError` before that batch changes anything, and non-finite weights
    are caught at checkpoints; both roll back to the last checkpoint (see
    :mod:`jitbp.divergence`). Ctrl-C raises :class:`TrainingInterrupted` at the next batch
    boundary; every exception says how many batches were applied (see :mod:`jitbp.interrupts`).
    ``parallel`` (a :class:`jitbp.distributed.DataParallel`) trains on every rank of
    an MPI job instead, each on its slice of every batch.

    Data bigger than memory (:mod:`jitbp.batches`): ``np.memmap`` inputs or targets are
    shuffled over all their rows and gathered batch by batch; with ``Y=None``, ``X`` is a
    source of ``(X, Y)`` batches (a function returning an iterable per epoch, a
    re-iterable, or a one-shot generator for one epoch). Each batch is checked as it
    arrives; training metrics are then skipped (validation metrics are kept).

    ``sample_weight`` (one non-negative number per sample) and ``class_weight`` (``{label:
    weight}`` or ``"balanced"``, for cross_entropy) weight each sample's loss: a mean loss
    becomes ``sum_i w_i l_i / sum_i w_i`` per batch (as torch's ``CrossEntropyLoss(weight=)``),
    a sum loss ``sum_i w_i l_i`` (see :mod:`jitbp.weights`). Validation loss stays unweighted.

    At each epoch's end (see :mod:`jitbp.monitor`): the loss on ``validation=(X_val,
    Y_val)`` or on the last ``validation_split`` share of the samples, ``metrics`` (names
    or functions, :mod:`jitbp.metrics`) on the training and validation data, then
    ``callbacks`` (:mod:`jitbp.callbacks`; one returning true stops training), with
    progress output per ``verbose`` (:mod:`jitbp.progress`).
    """
    if parallel is not None:
        if (validation, validation_split, metrics, callbacks, verbose, sample_weight, class_weight) != (None,) * 7:
            raise ValueError("parallel= does not take validation, validation_split, metrics, callbacks, "
                             "verbose, sample_weight or class_weight yet; "
                             "evaluate on rank 0 after learn returns")
        return parallel.learn(net, X, Y, loss=loss, optimizer=optimizer, epochs=epochs, batch_size=batch_size,
                              shuffle=shuffle, seed=seed, tol=tol, patience=patience)
    settings = learn_settings(net, loss, optimizer, epochs, batch_size, patience, tol, shuffle, seed)
    loss, optimizer, epochs, batch_size, patience, tol, shuffle, seed = settings
    run_seed = secrets.randbits(64) if seed is None else seed  # shuffles and keys the layers' random streams
    data = batches.stream(net, X, Y, loss, batch_size, shuffle, run_seed)
    if data is None:
        inputs = checks.inputs(net, X)
        target = checks.targets(net, Y, loss, len(inputs[0]))
    elif validation_split is not None:
        raise ValueError("memmap data and sources of batches take no validation_split=; pass "
                         "validation=(X_val, Y_val)")
    elif sample_weight is not None or class_weight is not None:
        raise ValueError("memmap data and sources of batches take no sample_weight= or class_weight=; "
                         "train on in-memory arrays to weight samples")
    sample_weights = None if data is not None else weights.per_sample(loss, target, sample_weight, class_weight)
    if sample_weights is not None and net.device != "cpu":
        raise ValueError(f"sample_weight and class_weight train on device='cpu' only (this network is on "
                         f"{net.device!r})")
    monitor = Monitor(net, loss, optimizer, epochs, validation, validation_split, metrics, callbacks, verbose)
    monitor.history.seed = run_seed
    engine = net.engine
    updates = engine.optimizer_updates(optimizer, seed=run_seed)
    schedule = per_step_schedule(monitor.callbacks)
    if schedule is not None and net.device != "cpu":
        raise ValueError(f"per-step schedules run on CPU networks; this one is on {net.device!r} "
                         f"(use per='epoch')")
    if data is None:
        inputs, target = monitor.train_data(inputs, target)
        train_loss, train_target = weights.packed(loss, target, None if sample_weights is None
                                                  else sample_weights[:len(target)])
        run = ArrayEpochs(engine, inputs, train_target, batch_size, shuffle, run_seed, train_loss, updates, epochs,
                          schedule)
    else:
        inputs = target = None  # training metrics would read all the data again: validation only
        run = StreamEpochs(engine, data, loss, updates, epochs, schedule)
    checkpoint = Checkpoint(net, optimizer, run.samples)
    history, plateau = monitor.history, Plateau(tol, patience)
    if schedule is not None:
        if run.batches is None and schedule.fill:
            raise ValueError("with a source of batches, learn does not know the number of steps ahead: give "
                             "the per-step schedule its length in steps instead of None")
        schedule.start_steps(epochs * (run.batches or 0))
    monitor.start()
    with BatchBoundary(checkpoint, run.batches or 0, history) as boundary:
        for epoch in range(epochs):
            total, failed_batch, value = boundary.epoch(run, epoch)
            if failed_batch is not None:
                loss.check(value)
                raise checkpoint.loss_diverged(epoch, failed_batch, value, history)
            if getattr(data, "exhausted", False):
                history.stopped = "the one-shot iterator of batches was used up after one epoch"
                break
            if epoch + 1 == checkpoint.due and epoch + 1 < epochs:  # the last epoch: verified below
                checkpoint.verify(epoch + 1, history + [total])
            if monitor.epoch_end(epoch, total, inputs, target):
                break
            history.stopped = history.stopped or plateau.stop(total)
            if history.stopped:
                break
        checkpoint.verify(len(history), history, final=True)
        return monitor.finish()  # inside: a Ctrl-C in the last batch is raised after the callbacks end


class ArrayEpochs:
    """The epochs of in-memory arrays: a sample order per epoch (from ``seed`` when
    shuffled), then one engine call for all of its batches."""

    def __init__(self, engine, inputs, target, batch_size, shuffle, seed, loss, updates, epochs, schedule):
        self.engine, self.inputs, self.target, self.loss, self.updates = engine, inputs, target, loss, updates
        self.samples = n = len(target)
        self.size = n if batch_size is None else min(batch_size, n)
        self.batches = -(-n // self.size)
        shuffled = shuffle and self.size < n
        self.rng = np.random.default_rng(seed) if shuffled else None  # ~10 us: a short call notices
        mode = capture_mode()
        self.capture = mode == "always" or (mode == "auto" and epochs * self.batches >= CAPTURE_MIN_STEPS)
        self.schedule = schedule

    def __call__(self, epoch, interrupt):
        order = self.rng.permutation(self.samples) if self.rng is not None else None
        rates = {} if self.schedule is None else {"lrs": self.schedule.rates(epoch * self.batches, self.batches)}
        return self.engine.train_epoch(self.inputs, self.target, order, self.size, self.loss, self.updates,
                                       self.capture, interrupt, **rates)  # lrs: the CPU engine's only


class StreamEpochs:
    """The epochs of a :class:`jitbp.batches.Stream`: one engine call per batch."""

    def __init__(self, engine, data, loss, updates, epochs, schedule):
        self.engine, self.data, self.loss, self.updates, self.schedule = engine, data, loss, updates, schedule
        self.batches = data.batches
        self.samples = data.samples or CHECK_SAMPLES  # unknown ahead: verify every epoch
        mode = capture_mode()
        self.capture = mode == "always" or (mode == "auto" and epochs * (data.batches or 1) >= CAPTURE_MIN_STEPS)
        self.steps = 0

    def __call__(self, epoch, interrupt):
        result = self.data.train_epoch(epoch, self.engine, self.loss, self.updates, self.capture, self.schedule,
                                       self.steps, interrupt)
        self.steps += self.data.batches or 0
        return result
