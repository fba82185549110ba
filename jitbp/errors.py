"""Exceptions jitbp raises, each a subclass of the built-in a caller would expect."""


class ShapeError(ValueError):
    """An array has the wrong shape or length."""


class UnknownNameError(KeyError):
    """A layer, loss or optimizer name is not registered."""

    def __str__(self):
        return self.args[0] if self.args else ""


class PluginError(RuntimeError):
    """A plugin failed to import or broke the layer contract."""


class DivergenceError(FloatingPointError):
    """Training went non-finite; the parameters and optimizer state are restored to the
    last checkpoint whose loss was finite and not exploding, so training can resume.

    Two cases. The loss of a batch is not finite: it is checked on every batch (one
    ``isfinite`` on a float), so that batch is never applied and ``batch`` says which it
    was; the weights before it are finite but may be huge (the loss there is already
    inf), so they are restored from the checkpoint too. A weight or optimizer slot is not finite while the loss stays finite (for
    instance an inf weight hidden behind a saturated sigmoid): checking every weight on
    every step would cost as much as the update itself, so parameters and optimizer
    state are verified, and copied into a checkpoint, at the first epoch boundary after
    every ``jitbp.divergence.CHECK_SAMPLES`` (512) samples and when ``learn`` ends;
    ``batch`` is then ``None``. A checkpoint is refreshed only while the loss is not
    exploding (``jitbp.divergence.MAX_LOSS_RISE``); the first one is the start of the call.

    Trade-off: the checkpoint keeps one extra copy of the parameters and of the
    optimizer's slots, (1 + slots) x the parameter bytes (SGD 1x, SGD with momentum,
    RMSprop and Adagrad 2x, Adam 3x), allocated once per ``learn`` call; each check is
    one summing pass and one copy over them (about what one or two samples' steps
    cost). Recovery may go back up to 512 samples' worth of epochs (one epoch when an
    epoch has 512 samples or more). Models whose checkpoint would exceed
    ``jitbp.divergence.CHECKPOINT_MAX_BYTES`` (64 MiB) keep none, so that training large
    layers does not double their memory: they are still checked, and the error then
    says the parameters could not be restored.

    Attributes: ``epoch`` (1-based epoch where it was found), ``batch`` (1-based, or
    ``None``), ``restored_epoch`` (epochs of this ``learn`` call the parameters now
    reflect), ``history`` (their losses) and ``batches_applied`` (batches of this call
    the parameters now reflect; set as ``learn`` raises it).
    """

    def __init__(self, message, epoch=None, batch=None, restored_epoch=None, history=()):
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch
        self.restored_epoch = restored_epoch
        self.history = list(history)
        self.batches_applied = None


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) stopped ``learn`` at a batch boundary.

    Attributes: ``batches_applied`` (batches of this ``learn`` call in the parameters and
    optimizer state, all at the same step) and ``history`` (the losses of its completed
    epochs).
    """

    def __init__(self, batches_applied, history=()):
        super().__init__(f"learn was interrupted after {batches_applied} batch(es) of this call; every layer "
                         f"and the optimizer state are at that batch boundary, so the model can be saved "
                         f"or trained further")
        self.batches_applied = batches_applied
        self.history = list(history)


class ModelFileError(ValueError):
    """A model file is truncated, foreign, or of a newer format."""
