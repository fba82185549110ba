"""Validation at the public boundary: every problem is raised before a kernel runs."""
import math
import numbers

import numpy as np

from .errors import ShapeError
from .optim import Optimizer

#: dtype kinds accepted as data: bool, signed and unsigned integers, real floats.
NUMERIC_KINDS = "biuf"


def as_dtype(dtype):
    """``dtype`` as float32 or float64, or a clear error."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64, got {resolved}")
    return resolved.type


def numeric_array(name, data):
    """``data`` as a real numeric ndarray (not yet cast); strings, objects, complex, times and masks refused."""
    if isinstance(data, np.ma.MaskedArray) and np.ma.is_masked(data):
        raise ValueError(f"{name} has masked values; fill them first (e.g. {name}.filled(0.0))")
    try:
        array = np.asarray(data)
    except ValueError as exc:  # ragged nested lists
        raise ShapeError(f"{name} is ragged or not an array: {exc}") from None
    if array.dtype.kind not in NUMERIC_KINDS:
        raise TypeError(f"{name} must be real numbers (bool, int or float), got dtype {array.dtype}")
    return array


def first_non_finite(arrays):
    """Index of the first of ``arrays`` holding a NaN or inf, or ``None``: one summing pass
    each with no temporary array, and an exact check only where a sum is not finite (a
    large finite sum may overflow)."""
    with np.errstate(over="ignore", invalid="ignore"):
        for k, array in enumerate(arrays):
            if not (math.isfinite(np.add.reduce(array, axis=None)) or np.isfinite(array).all()):
                return k
    return None


def finite(name, array):
    """Refuse NaN and inf, saying how many there are."""
    if array.dtype.kind == "f" and first_non_finite([array]) is not None:
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"{name} contains {bad} NaN or inf value(s)")


def features(name, data, shape, dtype):
    """Samples of per-sample ``shape`` as a contiguous, writable, finite array of ``dtype``."""
    array = numeric_array(name, data)
    if array.ndim == 1 and shape == (1,):
        array = array.reshape(-1, 1)
    if array.shape[1:] != shape or array.ndim != len(shape) + 1:
        raise ShapeError(f"{name} must have shape (n_samples, {', '.join(map(str, shape))}), got {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples)")
    with np.errstate(over="ignore"):
        cast = array.astype(dtype, copy=False)
    if first_non_finite([cast]) is not None:  # one pass over the data in the common case
        finite(name, array)
        finite(f"{name} converted to {np.dtype(dtype).name}", cast)  # values beyond float32's range
    return np.require(cast, requirements=("C", "W", "A"))


def parameters(net):
    """Every parameter is still a C-contiguous array of the network's dtype and shape.

    Layers own their arrays: using a layer in a network of another dtype, or assigning
    ``layer.params[...]``, would otherwise reach the kernels as a typing error or as
    silently mixed precision.
    """
    arrays = [("parameter", key, value) for key, value in net.params.items()]
    arrays += [("state buffer", key, value) for key, value in net.states.items()]
    for what, key, value in arrays:
        if not isinstance(value, np.ndarray) or value.dtype != net.dtype or not value.flags.c_contiguous:
            got = f"{value.dtype} array" if isinstance(value, np.ndarray) else type(value).__name__
            raise TypeError(f"{what} {key} is a {got} but this network is {np.dtype(net.dtype).name} "
                            f"(C-contiguous): was its layer used in another network, or the array replaced? "
                            f"Build the network again.")
    for key, value in net.states.items():
        if value.shape != net.state_shapes[key]:
            raise ShapeError(f"state buffer {key} has shape {value.shape}, but the network was built with "
                             f"{net.state_shapes[key]}: was the array replaced? Build the network again.")


def writable_parameters(net):
    """Every parameter can be updated in place (training); a read-only array would otherwise
    fail as a Numba typing error part-way through the backward pass."""
    for what, arrays in (("parameter", net.params), ("state buffer", net.states)):
        for key, value in arrays.items():
            if not value.flags.writeable:
                raise ValueError(f"{what} {key} is a read-only array, so training cannot update it: "
                                 f"give the layer a writable copy (e.g. np.array(...)) or set "
                                 f"{key}.flags.writeable = True if its memory allows it")


def inputs(net, X):
    """``X`` (an array, or a list of arrays for several inputs) checked against ``net``."""
    parameters(net)
    if len(net.inputs) == 1:
        arrays = [features("X", X, net.inputs[0].shape, net.dtype)]
    else:
        if not isinstance(X, (list, tuple)) or len(X) != len(net.inputs):
            raise ShapeError(f"this network has {len(net.inputs)} inputs: pass X as a list of that many arrays")
        arrays = [features(f"X[{k}]", x, node.shape, net.dtype) for k, (x, node) in enumerate(zip(X, net.inputs))]
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1:
        raise ShapeError(f"the input arrays have different numbers of samples: {sorted(lengths)}")
    return arrays


def labels(loss, Y, classes):
    """Integer class labels in ``[0, classes)`` as int64."""
    array = numeric_array("Y", Y)
    if array.ndim != 1:
        raise ShapeError(f"{loss.name} takes integer class labels of shape (n_samples,), got {array.shape}")
    finite("Y", array)
    if not np.all(np.equal(np.mod(array, 1), 0)):
        raise ValueError(f"{loss.name} labels must be whole numbers")
    if array.size and (array.min() < 0 or array.max() >= classes):
        raise ValueError(f"labels must be in [0, {classes}), got range [{array.min()}, {array.max()}]")
    return np.ascontiguousarray(array, dtype=np.int64)


def targets(net, Y, loss, n):
    """``Y`` for ``loss``: integer class labels, or values shaped like the output."""
    out = net.output.shape
    if loss.labels:
        if len(out) != 1:
            raise ShapeError(f"{loss.name} needs a flat output, the network's is {out}")
        result = labels(loss, Y, out[0])
    else:
        result = features("Y", Y, out, net.dtype)
        loss.check_targets(result)
    if len(result) != n:
        raise ShapeError(f"X has {n} samples but Y has {len(result)}")
    return result


def integer(name, value):
    """``value`` as an int; bools and floats (even 2.0) are refused."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    return int(value)


def positive_int(name, value, allow_none=False, minimum=1):
    """An integer >= ``minimum`` (or ``None`` when allowed)."""
    if value is None and allow_none:
        return None
    value = integer(name, value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def seed(value):
    """A seed for ``np.random.default_rng``: ``None`` or an integer >= 0."""
    return positive_int("seed", value, allow_none=True, minimum=0)


def flag(name, value):
    """A real bool: ``shuffle="no"`` would otherwise read as true."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def tolerance(value):
    """``None`` or a finite number >= 0."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"tol must be a number, got {value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"tol must be a finite number >= 0, got {value!r}")
    return float(value)


def optimizer(value):
    """A jitbp optimizer instance (not a class, not a name) whose hyper-parameters, as they
    are now, the update rule can run."""
    if not isinstance(value, Optimizer):
        raise TypeError(f"optimizer must be a jitbp optimizer (SGD, Adam, RMSprop, Adagrad), got {value!r}")
    value.check()
    return value
