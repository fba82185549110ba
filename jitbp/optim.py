"""Optimizers: hyper-parameters and per-parameter state for the fused update rules.

Each optimizer follows torch.optim's published formula and defaults; the
arithmetic itself lives in :mod:`jitbp.kernels` and runs inside the layers'
derivative kernels.
"""
import math

import numpy as np

from . import kernels


def _check_number(name, value, low=0.0, high=math.inf, low_open=False, high_open=False):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if not math.isfinite(value) or too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        raise ValueError(f"{name} must be in {left}{low}, {high}{right}, got {value}")
    return value


class Hyper:
    """A number-valued hyper-parameter, checked (:func:`_check_number`) on every assignment:
    ``opt.lr = -1`` or ``opt.lr = "0.1"`` after construction is refused at once."""

    def __init__(self, **bounds):
        self.bounds = bounds

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, optimizer, owner=None):
        if optimizer is None:
            return self
        try:
            return optimizer.__dict__[self.name]
        except KeyError:
            raise AttributeError(self.name) from None

    def __set__(self, optimizer, value):
        optimizer.__dict__[self.name] = _check_number(self.name, value, **self.bounds)


class Optimizer:
    """Base class: keeps (slots, size) state and a step count per parameter array."""

    rule = kernels.ACCUMULATE
    n_slots = 0
    lr = Hyper()
    weight_decay = Hyper()

    def __init__(self, lr, weight_decay=0.0):
        self.lr = lr
        self.weight_decay = weight_decay
        self._state = {}

    def check(self):
        """Refuse combinations of hyper-parameters the rule cannot run (called by ``learn``)."""

    def _entries(self, params):
        entries = []
        for param in params:
            entry = self._state.get(id(param))
            if entry is None or entry[0] is not param:
                entry = [param, np.zeros((self.n_slots, param.size), dtype=param.dtype), 0]
                self._state[id(param)] = entry
            entries.append(entry)
        return entries

    def prepare(self, params):
        """Advance the step of ``params`` (one layer's arrays); return (hyper, states)."""
        entries = self._entries(params)
        for entry in entries:
            entry[2] += 1
        return self.hyper(max(entry[2] for entry in entries)), tuple(entry[1] for entry in entries)

    def states(self, params):
        """The state arrays of ``params``, created on first use, without taking a step."""
        return tuple(entry[1] for entry in self._entries(params))

    def steps_taken(self, params):
        """The set of step counts of ``params`` (one value when they moved together)."""
        return {entry[2] for entry in self._entries(params)}

    def advance(self, params, steps):
        """Record ``steps`` updates of ``params`` made by a captured epoch."""
        for entry in self._entries(params):
            entry[2] += steps

    def hyper(self, step):
        """The float64 hyper-parameter vector the rule reads at ``step`` (1-based)."""
        out = np.empty(len(self.base_hyper()))
        kernels.hyper_at(self.rule, self.base_hyper(), step, out)
        return out

    def base_hyper(self):
        """Hyper-parameters in the rule's slot order; step-dependent slots are filled by
        :func:`jitbp.kernels.hyper_at`, in Python and in captured epochs alike."""
        raise NotImplementedError

    def state_of(self, param):
        """(slots array, step) kept for ``param``, or ``None`` if it has none. The step may be 0:
        a captured epoch creates the state before it knows whether any step is taken, and
        model files store such a state as it is."""
        entry = self._state.get(id(param))
        return None if entry is None or entry[0] is not param else (entry[1], entry[2])

    def set_state(self, param, slots, step):
        """Restore the state of ``param`` (used by model files and divergence recovery)."""
        slots = np.array(slots, dtype=param.dtype).reshape(self.n_slots, param.size)
        self._state[id(param)] = [param, slots, int(step)]

    def forget(self, param):
        """Drop the state of ``param``, as before its first step (divergence recovery)."""
        self._state.pop(id(param), None)

    def settings(self):
        """Constructor arguments, for model files and ``repr``."""
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """torch.optim.SGD: optional momentum, dampening, Nesterov and weight decay."""

    rule = kernels.SGD
    momentum = Hyper()
    dampening = Hyper(high=1.0)

    def __init__(self, lr, momentum=0.0, nesterov=False, dampening=0.0, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov
        #: A momentum buffer, fixed at construction: the state arrays are shaped by it.
        self.n_slots = 1 if self.momentum else 0
        self.check()

    @property
    def nesterov(self):
        return self._nesterov

    @nesterov.setter
    def nesterov(self, value):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"nesterov must be True or False, got {value!r}")
        self._nesterov = bool(value)

    def check(self):
        if self.nesterov and (self.momentum == 0.0 or self.dampening != 0.0):
            raise ValueError("nesterov needs momentum > 0 and dampening 0")
        if bool(self.momentum) != bool(self.n_slots):
            raise ValueError(f"momentum was {'switched off' if self.n_slots else 'switched on'} after this SGD "
                             f"was created; its state has no room for that: create a new SGD")

    def base_hyper(self):
        return np.array([self.lr, self.momentum, self.dampening, float(self.nesterov), self.weight_decay, 0.0])

    def settings(self):
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov,
                "dampening": self.dampening, "weight_decay": self.weight_decay}


class Adam(Optimizer):
    """torch.optim.Adam (bias-corrected moments, eps added after the square root)."""

    rule = kernels.ADAM
    n_slots = 2
    eps = Hyper()

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.betas = betas
        self.eps = eps

    @property
    def betas(self):
        return self._betas

    @betas.setter
    def betas(self, value):
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise TypeError(f"betas must be a pair of numbers, got {value!r}")
        self._betas = (_check_number("betas[0]", value[0], high=1.0, high_open=True),
                       _check_number("betas[1]", value[1], high=1.0, high_open=True))

    def base_hyper(self):
        return np.array([self.lr, *self.betas, self.eps, self.weight_decay, 1.0, 1.0])

    def settings(self):
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps,
                "weight_decay": self.weight_decay}


class RMSprop(Optimizer):
    """torch.optim.RMSprop without momentum or centering."""

    rule = kernels.RMSPROP
    n_slots = 1
    alpha = Hyper(high=1.0)
    eps = Hyper()

    def __init__(self, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.alpha = alpha
        self.eps = eps

    def base_hyper(self):
        return np.array([self.lr, self.alpha, self.eps, self.weight_decay])

    def settings(self):
        return {"lr": self.lr, "alpha": self.alpha, "eps": self.eps, "weight_decay": self.weight_decay}


class Adagrad(Optimizer):
    """torch.optim.Adagrad with learning-rate decay and a zero initial accumulator."""

    rule = kernels.ADAGRAD
    n_slots = 1
    lr_decay = Hyper()
    eps = Hyper()

    def __init__(self, lr=1e-2, lr_decay=0.0, eps=1e-10, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.lr_decay = lr_decay
        self.eps = eps

    def base_hyper(self):
        return np.array([self.lr, self.eps, self.weight_decay, self.lr, self.lr_decay])

    def settings(self):
        return {"lr": self.lr, "lr_decay": self.lr_decay, "eps": self.eps,
                "weight_decay": self.weight_decay}


OPTIMIZERS = {cls.__name__: cls for cls in (SGD, Adam, RMSprop, Adagrad)}
