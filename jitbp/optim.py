"""Optimizers: hyper-parameters and per-parameter state for the fused update rules.

Each optimizer follows torch.optim's published formula and defaults. Its update
rule is a :class:`jitbp.rules.Rule` record (math, state slots, hyper-parameter
layout); the class here adds the validated attributes the record's hyper names read.
A built-in rule runs fused inside the layers' derivative kernels; a plugin's rule
(:func:`register_optimizer`) runs from a gradient buffer per layer.
"""
import math

import numpy as np

from . import kernels, rules


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
    """Base class: keeps (slots, size) state and a step count per parameter array.

    A subclass sets ``spec`` (its :class:`jitbp.rules.Rule`); its hyper-parameter vector
    is read from the attributes named by ``spec.base_names``.
    """

    spec = None
    lr = Hyper()
    weight_decay = Hyper()

    def __init__(self, lr, weight_decay=0.0):
        self.lr = lr
        self.weight_decay = weight_decay
        self._state = {}

    @property
    def rule(self):
        """The rule id the kernels dispatch on."""
        return self.spec.id

    @property
    def n_slots(self):
        """State slots per parameter element."""
        return len(self.spec.slots)

    @property
    def fused(self):
        """Whether the layers' kernels apply this rule themselves (a built-in rule)."""
        return self.spec.id in rules.BUILTIN_IDS

    def apply_gradient(self, param, grad, state, hyper):
        """Apply this rule to ``param`` from its gradient buffer ``grad``."""
        if self.fused:
            kernels.apply_gradient(self.rule, param, grad, state, hyper)
        else:
            kernels.apply_rule(self.spec.update, self.spec.constants, param, grad, state, hyper)

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
        base = self.base_hyper()
        out = base.copy()
        if self.fused:
            kernels.hyper_at(self.rule, base, step, out)
        else:
            self.spec.at_step(base, step, out)
        return out

    def base_hyper(self):
        """Hyper-parameters in the rule's slot order (``spec.hyper``); step-dependent slots
        are 0 here and filled by :func:`jitbp.kernels.hyper_at`, in Python and in captured
        epochs alike."""
        values = [float(getattr(self, name)) for name in self.spec.base_names]
        return np.array(values + [0.0] * len(self.spec.derived))

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

    spec = rules.RULES[rules.SGD]
    momentum = Hyper()
    dampening = Hyper(high=1.0)

    def __init__(self, lr, momentum=0.0, nesterov=False, dampening=0.0, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov
        #: A momentum buffer, fixed at construction: the state arrays are shaped by it.
        self._slots = 1 if self.momentum else 0
        self.check()

    @property
    def n_slots(self):
        return self._slots

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
        if bool(self.momentum) != bool(self._slots):
            raise ValueError(f"momentum was {'switched off' if self._slots else 'switched on'} after this SGD "
                             f"was created; its state has no room for that: create a new SGD")

    def settings(self):
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov,
                "dampening": self.dampening, "weight_decay": self.weight_decay}


class Adam(Optimizer):
    """torch.optim.Adam (bias-corrected moments, eps added after the square root)."""

    spec = rules.RULES[rules.ADAM]
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

    beta1 = property(lambda self: self.betas[0], doc="betas[0], as the rule's hyper vector names it")
    beta2 = property(lambda self: self.betas[1], doc="betas[1], as the rule's hyper vector names it")

    def settings(self):
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps,
                "weight_decay": self.weight_decay}


class RMSprop(Optimizer):
    """torch.optim.RMSprop without momentum or centering."""

    spec = rules.RULES[rules.RMSPROP]
    alpha = Hyper(high=1.0)
    eps = Hyper()

    def __init__(self, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.alpha = alpha
        self.eps = eps

    def settings(self):
        return {"lr": self.lr, "alpha": self.alpha, "eps": self.eps, "weight_decay": self.weight_decay}


class Adagrad(Optimizer):
    """torch.optim.Adagrad with learning-rate decay and a zero initial accumulator."""

    spec = rules.RULES[rules.ADAGRAD]
    lr_decay = Hyper()
    eps = Hyper()

    def __init__(self, lr=1e-2, lr_decay=0.0, eps=1e-10, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.lr_decay = lr_decay
        self.eps = eps

    def settings(self):
        return {"lr": self.lr, "lr_decay": self.lr_decay, "eps": self.eps,
                "weight_decay": self.weight_decay}


class AdamW(Adam):
    """torch.optim.AdamW: Adam with decoupled weight decay, ``p -= lr * wd * p`` before the step."""

    spec = rules.RULES[rules.ADAMW]

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(lr, betas, eps, weight_decay)


#: Optimizer classes by name (model files store the name); plugins add theirs with
#: :func:`register_optimizer`.
OPTIMIZERS = {cls.__name__: cls for cls in (SGD, Adam, RMSprop, Adagrad, AdamW)}


def register_optimizer(cls):
    """Make the :class:`Optimizer` subclass ``cls`` known by its class name (model files,
    the ``register_optimizers`` plugin hook). Its ``spec`` must be a :class:`jitbp.rules.Rule`
    with an id no other rule has."""
    from .errors import PluginError

    if not (isinstance(cls, type) and issubclass(cls, Optimizer)):
        raise PluginError(f"register_optimizer() takes an Optimizer subclass, got {cls!r}")
    if not isinstance(cls.spec, rules.Rule):
        raise PluginError(f"optimizer {cls.__name__}: spec must be a jitbp.rules.Rule, got {cls.spec!r}")
    for name in ("at_step", "constants", "update"):
        if not hasattr(getattr(cls.spec, name), "scalar_source"):
            raise PluginError(f"optimizer {cls.__name__}: spec.{name} must be a @jitbp.scalar.scalar function")
    taken = {other.spec.id: other for other in OPTIMIZERS.values() if other is not cls}
    if cls.spec.id in taken or cls.spec.id == rules.ACCUMULATE:
        owner = taken.get(cls.spec.id)
        raise PluginError(f"optimizer {cls.__name__}: rule id {cls.spec.id} is already taken"
                          + (f" by {owner.__name__}" if owner else " (ACCUMULATE)"))
    if OPTIMIZERS.get(cls.__name__, cls) is not cls:
        raise PluginError(f"optimizer name {cls.__name__!r} is already registered")
    OPTIMIZERS[cls.__name__] = cls
    return cls


def unregister_optimizer(cls):
    """Forget a plugin optimizer registered with :func:`register_optimizer`."""
    if cls.spec.id in rules.BUILTIN_IDS:
        raise ValueError(f"{cls.__name__} is built in")
    OPTIMIZERS.pop(cls.__name__, None)
