"""The training loop: epochs of online, mini-batch or full-batch steps."""
import math

import numpy as np

from . import checks, weights
from .capture import CAPTURE_MIN_STEPS, capture_mode
from .divergence import Checkpoint
from .interrupts import BatchBoundary
from .losses import get_loss
from .monitor import Monitor
from .optim import SGD


def learn_arguments(net, X, Y, loss, optimizer, epochs, batch_size, patience, tol, shuffle, seed):
    """``learn``'s arguments checked and normalised before any kernel runs: the loss and
    optimizer objects, the numbers, and the inputs and targets as arrays."""
    loss = get_loss(loss)
    optimizer = checks.optimizer(SGD(lr=0.01) if optimizer is None else optimizer)
    epochs = checks.positive_int("epochs", epochs, minimum=0)
    batch_size = checks.positive_int("batch_size", batch_size, allow_none=True)
    patience = checks.positive_int("patience", patience)
    tol = checks.tolerance(tol)
    shuffle = checks.flag("shuffle", shuffle)
    seed = checks.seed(seed)
    inputs = checks.inputs(net, X)
    checks.writable_parameters(net)
    target = checks.targets(net, Y, loss, len(inputs[0]))
    return loss, optimizer, epochs, batch_size, patience, tol, shuffle, seed, inputs, target


def learn(net, X, Y, loss="mse", optimizer=None, epochs=1, batch_size=None, shuffle=True, seed=None,
          tol=None, patience=5, validation=None, validation_split=None, metrics=None, callbacks=None,
          verbose=None, parallel=None, sample_weight=None, class_weight=None):
    """Train ``net`` in place and return the loss of each epoch as a :class:`~jitbp.history.History`.

    ``batch_size=None`` trains on the full batch, ``1`` online, ``k`` on mini-batches
    (the last one may be partial). With ``shuffle`` the sample order of each epoch is
    drawn from ``seed``. An epoch's loss is the loss over its batches as they were
    trained (summed for sum losses, averaged over samples for mean losses). With
    ``tol``, training stops once the epoch loss has not improved by more than ``tol``
    for ``patience`` epochs. A non-finite loss stops training with
    :class:`DivergenceError` before that batch changes anything, and non-finite weights
    are caught at checkpoints; both roll back to the last checkpoint (see
    :mod:`jitbp.divergence`). Ctrl-C raises :class:`TrainingInterrupted` at the next batch
    boundary; every exception says how many batches were applied (see :mod:`jitbp.interrupts`).
    ``parallel`` (a :class:`jitbp.distributed.DataParallel`) trains on every rank of
    an MPI job instead, each on its slice of every batch.

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
    loss, optimizer, epochs, batch_size, patience, tol, shuffle, seed, inputs, target = learn_arguments(
        net, X, Y, loss, optimizer, epochs, batch_size, patience, tol, shuffle, seed)
    sample_weights = weights.per_sample(loss, target, sample_weight, class_weight)
    if sample_weights is not None and net.device != "cpu":
        raise ValueError(f"sample_weight and class_weight train on device='cpu' only (this network is on "
                         f"{net.device!r})")
    monitor = Monitor(net, loss, optimizer, epochs, validation, validation_split, metrics, callbacks, verbose)
    inputs, target = monitor.train_data(inputs, target)
    train_loss, train_target = weights.packed(loss, target, None if sample_weights is None
                                              else sample_weights[:len(target)])
    n = len(target)
    size = n if batch_size is None else min(batch_size, n)
    shuffled = shuffle and size < n
    rng = np.random.default_rng(seed) if shuffled else None  # ~10 us: a short call notices
    engine = net.engine
    updates = engine.optimizer_updates(optimizer)
    mode = capture_mode()
    capture = mode == "always" or (mode == "auto" and epochs * -(-n // size) >= CAPTURE_MIN_STEPS)
    checkpoint = Checkpoint(net, optimizer, n)
    history, best, stale = monitor.history, math.inf, 0
    monitor.start()
    with BatchBoundary(checkpoint, -(-n // size), history) as boundary:
        for epoch in range(epochs):
            order = rng.permutation(n) if shuffled else None
            total, failed_batch, value = boundary.epoch(engine.train_epoch, inputs, train_target, order, size,
                                                        train_loss, updates, capture)
            if failed_batch is not None:
                loss.check(value)
                raise checkpoint.loss_diverged(epoch, failed_batch, value, history)
            if epoch + 1 == checkpoint.due and epoch + 1 < epochs:  # the last epoch: verified below
                checkpoint.verify(epoch + 1, history + [total])
            if monitor.epoch_end(epoch, total, inputs, target):
                break
            if tol is not None:
                if best - total > tol:
                    best, stale = total, 0
                else:
                    stale += 1
                    if stale >= patience:
                        break
        checkpoint.verify(len(history), history, final=True)
        return monitor.finish()  # inside: a Ctrl-C in the last batch is raised after the callbacks end
