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
    """Training went non-finite; the parameters and optimizer state are the last finite ones.

    Two cases. The loss of a batch is not finite: it is checked on every batch (one
    ``isfinite`` on a float), so that batch is never applied and ``batch`` says which it
    was. A weight or optimizer slot is not finite while the loss stays finite (for
    instance an inf weight hidden behind a saturated sigmoid): checking every weight on
    every step would cost as much as the update itself, so parameters and optimizer
    state are verified, and copied into a checkpoint, at the first epoch boundary after
    every ``jitbp.divergence.CHECK_SAMPLES`` (512) samples and when ``learn`` ends;
    ``batch`` is then ``None`` and both are restored from that checkpoint.

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
    reflect) and ``history`` (their losses).
    """

    def __init__(self, message, epoch=None, batch=None, restored_epoch=None, history=()):
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch
        self.restored_epoch = restored_epoch
        self.history = list(history)


class ModelFileError(ValueError):
    """A model file is truncated, foreign, or of a newer format."""
