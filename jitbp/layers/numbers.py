"""One check for the float arguments of the built-in layers (slopes, probabilities, eps)."""
import math

import numpy as np


def check_number(layer, name, value, low=-math.inf, high=math.inf, include_low=True, include_high=True):
    """``value`` as a finite float in the interval from ``low`` to ``high``, or a
    ``TypeError`` / ``ValueError`` naming ``layer`` and the argument."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{layer}: {name} must be a number, got {value!r}")
    value = float(value)
    above = value >= low if include_low else value > low
    below = value <= high if include_high else value < high
    if not (math.isfinite(value) and above and below):
        interval = "" if (low, high) == (-math.inf, math.inf) else (
            f" in {'[' if include_low else '('}{low:g}, {high:g}{']' if include_high and high < math.inf else ')'}")
        raise ValueError(f"{layer}: {name} must be a finite number{interval}, got {value!r}")
    return value
