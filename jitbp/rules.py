"""The optimizers' update rules, one :class:`Rule` record each.

A record holds everything the kernels need to know about an optimizer: its id (the
int that :mod:`jitbp.kernels` and :mod:`jitbp.cuda.rules` dispatch on), the names of
its state slots, the layout of its float64 hyper-parameter vector, and its scalar
math written once with :func:`jitbp.scalar.scalar` (compiled for the CPU here and
for CUDA by :func:`jitbp.scalar.on_cuda`).

Every rule has the same shape, so one dispatcher serves them all:

- ``at_step(base, step, out)``: fill the step-dependent slots of ``out`` (a copy of
  ``base``) for ``step`` (1-based);
- ``constants(hyper)``: :data:`N_CONSTANTS` float64 numbers derived from the vector,
  hoisted out of the per-element loop (kernels cast them to the parameters' dtype);
- ``update(p, g, s0, s1, c)``: the new ``(p, s0, s1)`` for one element with gradient
  ``g`` and state values ``s0``, ``s1`` (ignored by a rule with fewer slots).

The hyper vector's slot constants below are unpacked from the record's name tuple, so
a count that does not match fails at import, and :class:`jitbp.optim.Optimizer` builds
the vector from the same names.
"""
import math
from dataclasses import dataclass

from .scalar import scalar

#: Every ``constants`` function returns this many numbers (unused ones are 0).
N_CONSTANTS = 7
#: ``ACCUMULATE`` adds ``g`` to ``state[0, i]`` and leaves the parameter alone: the engine
#: uses it for :meth:`Network.gradients` and for shared parameters.
ACCUMULATE = 0


#: Where every rule's hyper-parameter vector keeps its learning rate.
LR_SLOT = 0


@dataclass(frozen=True)
class Rule:
    """One optimizer's update rule: ids, layouts and scalar math (see the module docstring)."""

    name: str
    id: int
    #: State slot names: rows of the (slots, param.size) state array.
    slots: tuple
    #: Hyper-parameter vector layout: optimizer attribute names, then the ``derived`` ones.
    hyper: tuple
    #: Trailing names of ``hyper`` that ``at_step`` fills per step.
    derived: tuple
    at_step: object
    constants: object
    update: object

    def __post_init__(self):
        if self.hyper[:1] != ("lr",):
            raise ValueError(f"rule {self.name!r}: the learning rate comes first in hyper (slot LR_SLOT, "
                             f"which per-step schedules set)")
        if self.hyper[len(self.hyper) - len(self.derived):] != self.derived:
            raise ValueError(f"rule {self.name!r}: derived hyper-parameters must come last")
        if len(self.slots) > 2:
            raise ValueError(f"rule {self.name!r}: at most 2 state slots, got {len(self.slots)}")

    @property
    def base_names(self):
        """The names filled from the optimizer's attributes."""
        return self.hyper[:len(self.hyper) - len(self.derived)]


# --- SGD: torch.optim.SGD with momentum, dampening, Nesterov, weight decay ----------------------

SGD = 1
SGD_HYPER = ("lr", "momentum", "dampening", "nesterov", "weight_decay", "first")
SGD_LR, SGD_MOMENTUM, SGD_DAMPENING, SGD_NESTEROV, SGD_WD, SGD_FIRST = range(len(SGD_HYPER))


@scalar
def sgd_at_step(base, step, out):
    out[SGD_FIRST] = 1.0 if step == 1 else 0.0


@scalar
def sgd_constants(hyper):
    return (hyper[SGD_LR], hyper[SGD_MOMENTUM], 1.0 - hyper[SGD_DAMPENING], hyper[SGD_NESTEROV],
            hyper[SGD_WD], hyper[SGD_FIRST], 0.0)


@scalar
def sgd_update(p, g, buf, unused, c):
    lr, momentum, undamped, nesterov, wd, first = c[0], c[1], c[2], c[3], c[4], c[5]
    if wd != 0.0:
        g = g + wd * p
    if momentum != 0.0:
        buf = g if first != 0.0 else momentum * buf + undamped * g
        g = g + momentum * buf if nesterov != 0.0 else buf
    return p - lr * g, buf, unused


# --- Adam and AdamW: torch.optim.Adam / AdamW (eps after the square root) ----------------------

ADAM = 2
ADAM_HYPER = ("lr", "beta1", "beta2", "eps", "weight_decay", "bc1", "bc2_sqrt")
ADAM_LR, ADAM_B1, ADAM_B2, ADAM_EPS, ADAM_WD, ADAM_BC1, ADAM_BC2_SQRT = range(len(ADAM_HYPER))


@scalar
def adam_at_step(base, step, out):
    out[ADAM_BC1] = 1.0 - base[ADAM_B1] ** step
    out[ADAM_BC2_SQRT] = math.sqrt(1.0 - base[ADAM_B2] ** step)


@scalar
def adam_constants(hyper):
    return (hyper[ADAM_LR] / hyper[ADAM_BC1], 1.0 - hyper[ADAM_B1], hyper[ADAM_B2], 1.0 - hyper[ADAM_B2],
            hyper[ADAM_EPS], hyper[ADAM_WD], hyper[ADAM_BC2_SQRT])


@scalar
def adam_moments(p, g, m, v, c):
    """Adam's step from the moments: ``c`` as :func:`adam_constants` lays it out."""
    step_size, one_minus_b1, b2, one_minus_b2, eps, bc2_sqrt = c[0], c[1], c[2], c[3], c[4], c[6]
    m = m + one_minus_b1 * (g - m)
    v = b2 * v + one_minus_b2 * g * g
    return p - step_size * (m / (math.sqrt(v) / bc2_sqrt + eps)), m, v


@scalar
def adam_update(p, g, m, v, c):
    wd = c[5]
    if wd != 0.0:
        g = g + wd * p
    return adam_moments(p, g, m, v, c)


ADAMW = 5


@scalar
def adamw_constants(hyper):
    """Adam's constants with slot 5 holding the decoupled decay factor ``1 - lr * wd``."""
    return (hyper[ADAM_LR] / hyper[ADAM_BC1], 1.0 - hyper[ADAM_B1], hyper[ADAM_B2], 1.0 - hyper[ADAM_B2],
            hyper[ADAM_EPS], 1.0 - hyper[ADAM_LR] * hyper[ADAM_WD], hyper[ADAM_BC2_SQRT])


@scalar
def adamw_update(p, g, m, v, c):
    return adam_moments(p * c[5], g, m, v, c)


# --- RMSprop: torch.optim.RMSprop without momentum or centering --------------------------------

RMSPROP = 3
RMS_HYPER = ("lr", "alpha", "eps", "weight_decay")
RMS_LR, RMS_ALPHA, RMS_EPS, RMS_WD = range(len(RMS_HYPER))


@scalar
def no_step_hyper(base, step, out):
    pass


@scalar
def rmsprop_constants(hyper):
    return hyper[RMS_LR], hyper[RMS_ALPHA], 1.0 - hyper[RMS_ALPHA], hyper[RMS_EPS], hyper[RMS_WD], 0.0, 0.0


@scalar
def rmsprop_update(p, g, v, unused, c):
    lr, alpha, one_minus_alpha, eps, wd = c[0], c[1], c[2], c[3], c[4]
    if wd != 0.0:
        g = g + wd * p
    v = alpha * v + one_minus_alpha * g * g
    return p - lr * (g / (math.sqrt(v) + eps)), v, unused


# --- Adagrad: torch.optim.Adagrad with learning-rate decay, zero initial accumulator ------------

ADAGRAD = 4
ADAGRAD_HYPER = ("lr", "lr_decay", "eps", "weight_decay", "clr")
ADAGRAD_LR, ADAGRAD_LR_DECAY, ADAGRAD_EPS, ADAGRAD_WD, ADAGRAD_CLR = range(len(ADAGRAD_HYPER))


@scalar
def adagrad_at_step(base, step, out):
    out[ADAGRAD_CLR] = base[ADAGRAD_LR] / (1.0 + (step - 1) * base[ADAGRAD_LR_DECAY])


@scalar
def adagrad_constants(hyper):
    return hyper[ADAGRAD_CLR], hyper[ADAGRAD_EPS], hyper[ADAGRAD_WD], 0.0, 0.0, 0.0, 0.0


@scalar
def adagrad_update(p, g, s, unused, c):
    clr, eps, wd = c[0], c[1], c[2]
    if wd != 0.0:
        g = g + wd * p
    s = s + g * g
    return p - clr * (g / (math.sqrt(s) + eps)), s, unused


RULES = {rule.id: rule for rule in (
    Rule("sgd", SGD, ("momentum_buffer",), SGD_HYPER, ("first",), sgd_at_step, sgd_constants, sgd_update),
    Rule("adam", ADAM, ("exp_avg", "exp_avg_sq"), ADAM_HYPER, ("bc1", "bc2_sqrt"), adam_at_step,
         adam_constants, adam_update),
    Rule("rmsprop", RMSPROP, ("square_avg",), RMS_HYPER, (), no_step_hyper, rmsprop_constants, rmsprop_update),
    Rule("adagrad", ADAGRAD, ("sum",), ADAGRAD_HYPER, ("clr",), adagrad_at_step, adagrad_constants,
         adagrad_update),
    Rule("adamw", ADAMW, ("exp_avg", "exp_avg_sq"), ADAM_HYPER, ("bc1", "bc2_sqrt"), adam_at_step,
         adamw_constants, adamw_update),
)}
#: The ids :mod:`jitbp.kernels` dispatches on; a plugin's rule takes any other id and runs
#: through a gradient buffer (see :func:`jitbp.kernels.apply_rule`).
BUILTIN_IDS = frozenset(RULES)
