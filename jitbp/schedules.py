"""Learning-rate schedules, given as callbacks: ``learn(..., callbacks=[CosineLR(...)])``.

By default (``per="epoch"``) a schedule sets ``optimizer.lr`` before every epoch (the
optimizer re-reads it at the next step, in interpreted and captured epochs alike), and
``History.history["lr"]`` records the rate each epoch trained with. With ``per="step"``
it gives the rate of every optimizer step (batch) instead: ``learn`` hands each epoch
the array of its batches' rates, which a captured epoch reads inside its compiled loop
and the interpreted engine sets batch by batch, so both train alike; the lengths
(``step_size``, ``epochs``, ``warmup``) then count steps, ``epochs=None`` meaning every
step of the learn() call, and ``History.history["lr"]`` records each epoch's last rate.

The formulas are torch.optim.lr_scheduler's, with one scheduler step per epoch or per
batch; ``epoch`` below is the 0-based epoch or step within the learn() call and
``base`` is the optimizer's ``lr`` when the schedule first starts (kept, as torch keeps
``initial_lr``, so a second learn() call restarts the schedule from it rather than from
the rate the first call ended at).
"""
import math

import numpy as np

from .callbacks import Callback, _Monitored


PER = ("epoch", "step")


def _per(per):
    if per not in PER:
        raise ValueError(f"per must be 'epoch' or 'step', got {per!r}")
    return per


class Schedule(Callback):
    """Base class: ``rate(epoch, base)`` gives the rate of (0-based) ``epoch`` (or step)."""

    base = None
    per = "epoch"
    #: Whether the length (``epochs``) was left ``None``, for learn() to fill per call.
    fill = False

    def rate(self, epoch, base):
        raise NotImplementedError

    def _check(self):
        """Refuse a length the formula cannot run (once it is known)."""

    def start_steps(self, total):
        """Before a per-step learn() of ``total`` steps: a length left ``None`` becomes ``total``."""
        if self.fill:
            self.epochs = total
            self._check()

    def rates(self, first, count):
        """The rates of steps ``first ... first + count - 1`` (per-step schedules)."""
        return np.array([self.rate(step, self.base) for step in range(first, first + count)], dtype=np.float64)

    def on_train_begin(self):
        if self.base is None:
            self.base = self.optimizer.lr
        if self.per == "epoch":
            self.optimizer.lr = self.rate(0, self.base)

    def on_epoch_end(self, epoch, logs):
        if self.per == "epoch":
            self.optimizer.lr = self.rate(epoch, self.base)  # epoch is 1-based: the next one's rate
        return False


def _length(epochs, per):
    """A schedule's length; ``None`` (per-step only) is filled by learn()."""
    if epochs is None:
        if per != "step":
            raise ValueError("epochs=None (every step of the learn call) needs per='step'")
        return None
    return int(epochs)


class StepLR(Schedule):
    """torch's StepLR: ``base * gamma ** (epoch // step_size)``."""

    def __init__(self, step_size, gamma=0.1, per="epoch"):
        self.step_size, self.gamma, self.per = int(step_size), float(gamma), _per(per)

    def rate(self, epoch, base):
        return base * self.gamma ** (epoch // self.step_size)


class ExponentialLR(Schedule):
    """torch's ExponentialLR: ``base * gamma ** epoch``."""

    def __init__(self, gamma, per="epoch"):
        self.gamma, self.per = float(gamma), _per(per)

    def rate(self, epoch, base):
        return base * self.gamma ** epoch


class CosineLR(Schedule):
    """Linear warm-up from ``base * warmup_start`` over ``warmup`` epochs (torch's LinearLR),
    then cosine annealing to ``eta_min`` over the remaining ``epochs - warmup``
    (CosineAnnealingLR; the two chained as SequentialLR)."""

    def __init__(self, epochs, warmup=0, warmup_start=1.0 / 3, eta_min=0.0, per="epoch"):
        self.per = _per(per)
        self.epochs, self.warmup, self.fill = _length(epochs, self.per), int(warmup), epochs is None
        self.warmup_start, self.eta_min = float(warmup_start), float(eta_min)
        self._check()

    def _check(self):
        if self.epochs is not None and not 0 <= self.warmup < self.epochs:
            raise ValueError(f"warmup must be in [0, epochs), got {self.warmup} of {self.epochs}")


    def rate(self, epoch, base):
        if epoch < self.warmup:
            return base * (self.warmup_start + (1.0 - self.warmup_start) * epoch / self.warmup)
        t, T = epoch - self.warmup, self.epochs - self.warmup
        return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * t / T)) / 2


class OneCycleLR(Schedule):
    """torch's OneCycleLR (cosine, two phases) with one step per epoch (or step): from
    ``max_lr / div_factor`` up to ``max_lr`` over ``pct_start`` of ``epochs``, then down
    to ``max_lr / div_factor / final_div_factor``. The optimizer's own lr is ignored, and its
    momentum is not cycled (torch's ``cycle_momentum=False``)."""

    def __init__(self, max_lr, epochs, pct_start=0.3, div_factor=25.0, final_div_factor=1e4, per="epoch"):
        self.per = _per(per)
        self.max_lr, self.epochs, self.pct_start = float(max_lr), _length(epochs, self.per), float(pct_start)
        self.fill = epochs is None
        self.div_factor, self.final_div_factor = float(div_factor), float(final_div_factor)
        self._check()

    def _check(self):
        if self.epochs is not None and not 1 < self.pct_start * self.epochs < self.epochs:
            raise ValueError(f"OneCycleLR needs pct_start * epochs in (1, epochs) so that both phases have "
                             f"at least one {self.per}, got {self.pct_start} * {self.epochs}")


    def rate(self, epoch, base):
        initial = self.max_lr / self.div_factor
        low = initial / self.final_div_factor
        up_end = float(self.pct_start * self.epochs) - 1
        down_end = float(self.epochs - 1)

        def anneal(start, end, pct):
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)

        if epoch <= up_end:
            return anneal(initial, self.max_lr, epoch / up_end)
        return anneal(self.max_lr, low, (epoch - up_end) / (down_end - up_end))


def per_step_schedule(callbacks):
    """The one per-step schedule among ``callbacks``, or ``None``; refused beside anything
    else that sets the learning rate (they would overwrite each other's rates)."""
    stepwise = [cb for cb in callbacks if getattr(cb, "per", "epoch") == "step"]
    if not stepwise:
        return None
    setters = [cb for cb in callbacks if isinstance(cb, (Schedule, ReduceLROnPlateau))]
    if len(setters) > 1:
        names = ", ".join(type(cb).__name__ for cb in setters)
        raise ValueError(f"a per-step schedule sets the rate of every step; it cannot be combined with "
                         f"another schedule ({names})")
    return stepwise[0]


class ReduceLROnPlateau(Callback, _Monitored):
    """torch's ReduceLROnPlateau (relative threshold): multiply lr by ``factor`` once
    ``monitor`` has not improved for more than ``patience`` epochs, then wait
    ``cooldown`` epochs; never below ``min_lr``."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, threshold=1e-4, cooldown=0,
                 min_lr=0.0, mode="auto"):
        _Monitored.__init__(self, monitor, mode, 0.0)
        if not 0.0 < factor < 1.0:
            raise ValueError(f"factor must be in (0, 1), got {factor}")
        self.factor, self.patience, self.threshold = float(factor), int(patience), float(threshold)
        self.cooldown, self.min_lr = int(cooldown), float(min_lr)

    def on_train_begin(self):
        self.best, self.bad, self.cooling = None, 0, 0

    def on_epoch_end(self, epoch, logs):
        value = self.value(logs)
        better = self.best is None or (value < self.best * (1 - self.threshold) if self.mode == "min"
                                       else value > self.best * (1 + self.threshold))
        if better:
            self.best, self.bad = value, 0
        else:
            self.bad += 1
        if self.cooling > 0:
            self.cooling -= 1
            self.bad = 0
        if self.bad > self.patience:
            self.optimizer.lr = max(self.optimizer.lr * self.factor, self.min_lr)
            self.cooling, self.bad = self.cooldown, 0
        return False
