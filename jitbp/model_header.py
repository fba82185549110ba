"""The model-file header's rules, applied alike by the writer (before writing) and the reader.

One set of checks on both sides means a state that ``save`` accepts is one that ``load``
accepts: a violation is refused at save time, never discovered when loading.
"""
import numbers

from . import optim
from .errors import ModelFileError

#: Step counts are int64 in the kernels.
MAX_STEP = 2**63 - 1
DTYPES = ("float32", "float64")


def check(header):
    """Refuse a header whose layout is not the format's: every field of the right JSON type."""
    _expect(isinstance(header, dict), "the header is not a JSON object")
    _expect(header.get("dtype") in DTYPES, f"dtype {header.get('dtype')!r} is not one of {', '.join(DTYPES)}")
    inputs = header.get("inputs")
    _expect(_is_list(inputs) and inputs and all(_is_list(shape) and shape and all(_is_int(s) and s > 0 for s in shape)
                                                for shape in inputs),
            "inputs must be a non-empty list of positive integer shapes")
    calls = header.get("calls")
    _expect(_is_list(calls) and calls, "calls must be a non-empty list")
    for position, call in enumerate(calls):
        _check_call(call, len(inputs) + position)
    if "optimizer" in header:
        check_optimizer(header["optimizer"])


def _check_call(call, n_nodes):
    _expect(isinstance(call, dict), f"call {call!r} is not a JSON object")
    for field in ("layer", "kind"):
        _expect(isinstance(call.get(field), str) and call[field], f"call field {field!r} must be a non-empty string")
    for field in ("plugin", "plugin_version"):
        _expect(call.get(field) is None or isinstance(call[field], str), f"call field {field!r} must be a string")
    _expect(_member_safe(call["layer"]), f"layer name {call['layer']!r} cannot name a zip member "
                                          f"(it holds a NUL or is not valid UTF-8)")
    _expect(isinstance(call.get("config"), dict), f"call {call['layer']!r}: config must be a JSON object")
    inputs = call.get("inputs")
    _expect(_is_list(inputs) and inputs and all(_is_int(k) and 0 <= k < n_nodes for k in inputs),
            f"call {call['layer']!r} reads inputs {inputs!r}, which are not earlier nodes of the graph")


def check_optimizer(spec):
    """Refuse an optimizer entry that does not rebuild: unknown class, bad settings or steps."""
    _expect(isinstance(spec, dict), f"optimizer must be a JSON object, got {spec!r}")
    _expect(isinstance(spec.get("steps"), dict), "optimizer steps must be a JSON object")
    for key, step in spec["steps"].items():
        _expect(_is_int(step) and 0 <= step <= MAX_STEP,
                f"optimizer step {step!r} of {key} is not an integer in [0, 2**63)")
    optimizer(spec)


def optimizer(spec):
    """A fresh optimizer built from the entry's class and settings (its constructor validates them)."""
    name = spec.get("class")
    cls = optim.OPTIMIZERS.get(name) if isinstance(name, str) else None
    _expect(cls is not None, f"unknown optimizer {name!r}")
    settings = spec.get("settings")
    _expect(isinstance(settings, dict), "optimizer settings must be a JSON object")
    if _is_list(settings.get("betas")):
        settings = dict(settings, betas=tuple(settings["betas"]))
    try:
        return cls(**settings)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"optimizer {cls.__name__} refuses its settings: {exc}") from None


def check_params(call, declared, stored, what="parameters"):
    """Refuse a layer whose ``what`` (parameters or state buffers: names, shapes) from its
    config differ from ``stored``."""
    if declared is not None and dict(declared) != stored:
        raise ModelFileError(f"layer {call['layer']!r} ({call['kind']}) has {what} {declared} by its config, "
                             f"but the file holds {stored}")


def _member_safe(name):
    """Whether ``name`` survives as part of a zip member name (zipfile cuts names at a NUL)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\0" not in name


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_list(value):
    return isinstance(value, list)


def _expect(condition, message):
    if not condition:
        raise ModelFileError(message)
