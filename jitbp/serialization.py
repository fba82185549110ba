"""Model files: a zip of .npy arrays plus a JSON header; no pickled code.

The header records the format tag and version, the dtype, the graph (inputs and layer
calls by registered layer name, constructor config and providing plugin with its
version) and, optionally, the optimizer's settings and step counts; its slots are
arrays, like the parameters (``param/``) and the layers' state buffers (``state/``). Every array is checked by the zip's CRC-32, so a flipped byte is an error,
never a silently different weight.
"""
import errno
import json
import os
import struct
import zipfile
import zlib

import numpy as np

from . import atomic_file, checks, model_arrays, model_header
from .errors import ModelFileError, UnknownNameError
from .graph import Input
from .plugins import registry

FORMAT = "jitbp-model"
FORMAT_VERSION = 1
HEADER = "header.json"
#: What a damaged or foreign file can make zipfile, json and numpy raise while reading.
READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, KeyError, TypeError,
               IndexError, NotImplementedError, OverflowError, struct.error, zlib.error)
#: OS errors that already say what is wrong (not a damaged file): passed through.
PLAIN_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError)


def save(net, path, optimizer=None):
    """Write ``net`` (and ``optimizer``'s state) to exactly ``path``, atomically.

    The header is checked by the same rules ``load`` applies, so what is saved loads.
    """
    path = os.fspath(path)
    if optimizer is not None:
        checks.optimizer(optimizer)
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "cannot save a model over a directory", path)
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise FileNotFoundError(errno.ENOENT, "the directory to save the model in does not exist", path)
    header = {"format": FORMAT, "version": FORMAT_VERSION, "dtype": np.dtype(net.dtype).name,
              "inputs": [list(node.shape) for node in net.inputs], "calls": _calls(net)}
    arrays = {f"param/{key}": value for key, value in net.params.items()}
    arrays.update({f"state/{key}": value for key, value in net.states.items()})
    if optimizer is not None:
        header["optimizer"] = _optimizer_header(net, optimizer, arrays)
    text = json.dumps(header)
    try:
        _check_saved(net, json.loads(text), arrays)
    except ModelFileError as exc:
        raise ValueError(f"cannot save {path}: it would not load ({exc})") from None
    _write_atomic(path, text, arrays)


def _check_saved(net, header, arrays):
    """Apply the reader's rules to the header (as the reader will decode it) and the arrays."""
    model_header.check(header)
    reg = registry()
    for node, call in zip(net.calls, header["calls"]):
        info = reg.layers.get(call["kind"])
        if info is None or info.cls is not type(node.layer):
            raise ModelFileError(f"layer {call['layer']!r} is a {type(node.layer).__name__}, but layer "
                                 f"{call['kind']!r} is registered as {info.cls.__name__ if info else 'nothing'}; "
                                 f"load rebuilds layers by their registered name")
        stored = {key: value.shape for key, value in node.layer.params.items()}
        model_header.check_params(call, _declared_params(info.cls, call["config"]), stored)
        stored = {key: value.shape for key, value in node.layer.state.items()}
        model_header.check_params(call, _declared_states(info.cls, call["config"]), stored, "state buffers")
    spec = header.get("optimizer")
    if spec is not None:
        n_slots = model_header.optimizer(spec).n_slots
        for key in spec["steps"]:
            value = net.params[key]
            _check_like(f"optimizer/{key}", arrays[f"optimizer/{key}"], (n_slots, value.size), value.dtype)


def _calls(net):
    """The layer calls in topological order, each naming its inputs by position."""
    reg = registry()
    node_ids = {id(node): k for k, node in enumerate(net.inputs)}
    calls = []
    for node in net.calls:
        node_ids[id(node)] = len(net.inputs) + len(calls)
        info = reg.layers.get(node.layer.kind)
        calls.append({
            "layer": net.layer_names[id(node.layer)],
            "kind": node.layer.kind,
            "plugin": info.plugin if info else None,
            "plugin_version": info.version if info else None,
            "config": node.layer.config(),
            "inputs": [node_ids[id(inp)] for inp in node.inputs],
        })
    return calls


def _optimizer_header(net, optimizer, arrays):
    """The optimizer's class, settings and steps; its slots go into ``arrays``."""
    spec = {"class": type(optimizer).__name__, "settings": optimizer.settings(), "steps": {}}
    for key, value in net.params.items():
        state = optimizer.state_of(value)
        if state is not None:
            arrays[f"optimizer/{key}"] = state[0]
            spec["steps"][key] = int(state[1])
    return spec


def _write_atomic(path, header_text, arrays):
    """Write the zip through a temporary file renamed over ``path`` once complete."""
    with atomic_file.replacing(path) as handle, zipfile.ZipFile(handle, "w") as archive:
        archive.writestr(HEADER, header_text)
        for name, value in arrays.items():
            with archive.open(name + ".npy", "w") as member:
                np.lib.format.write_array(member, np.ascontiguousarray(value), allow_pickle=False)


def load(path):
    """The network saved at ``path``; ``net.saved_optimizer`` holds a saved optimizer, if any.

    Only the members the header names are read, each checked against its size before
    anything is allocated; a malformed file of any kind raises :class:`ModelFileError`.
    """
    path = os.fspath(path)
    try:
        with zipfile.ZipFile(path) as archive:
            header = _read_header(archive)
            net = _build(header, archive)
            _fill_params(net, archive)
            _fill_states(net, archive)
            net.saved_optimizer = _optimizer(header.get("optimizer"), net, archive)
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    except PLAIN_OS_ERRORS:
        raise
    except (OSError, *READ_ERRORS) as exc:
        raise ModelFileError(f"{path} is not a readable jitbp model file ({type(exc).__name__}: {exc})") from None
    return net


def _read_header(archive):
    if HEADER not in archive.namelist():
        raise ModelFileError("not a jitbp model file (no header)")
    try:
        header = json.loads(model_arrays.read_header_bytes(archive, HEADER))
    except (ValueError, RecursionError) as exc:  # also UnicodeDecodeError
        raise ModelFileError(f"corrupt model header: {type(exc).__name__}: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError("not a jitbp model file (wrong format tag)")
    version = header.get("version")
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise ModelFileError(f"model format version {version} is newer than this jitbp reads "
                             f"({FORMAT_VERSION}); upgrade jitbp")
    if version != FORMAT_VERSION:
        raise ModelFileError(f"unsupported model format version {version!r}")
    model_header.check(header)
    return header


def _build(header, archive):
    """The network the header describes, each layer checked against its stored arrays first."""
    from .network import Network

    nodes = [Input(tuple(shape)) for shape in header["inputs"]]
    layers = {}
    for call in header["calls"]:
        if call["layer"] not in layers:
            layers[call["layer"]] = _layer(call, archive)
        try:
            nodes.append(layers[call["layer"]](*(nodes[k] for k in call["inputs"])))
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"call of layer {call['layer']!r}: {exc}") from None
    return Network(nodes[:len(header["inputs"])], nodes[-1], dtype=checks.as_dtype(header["dtype"]))


def _layer(call, archive):
    """A layer rebuilt from its registered name and config, once its parameter shapes are checked."""
    try:
        cls = registry().layer_class(call["kind"])
    except UnknownNameError:
        raise ModelFileError(
            f"uses layer {call['kind']!r} from plugin {call['plugin']!r} "
            f"(version {call['plugin_version']}), which is not installed") from None
    try:
        declared = _declared_params(cls, call["config"])
        if declared is not None:
            stored = {key: model_arrays.shape_of(archive, f"param/{call['layer']}.{key}.npy")[0] for key in declared}
            model_header.check_params(call, declared, stored)
        declared = _declared_states(cls, call["config"])
        if declared is not None:
            stored = {key: model_arrays.shape_of(archive, f"state/{call['layer']}.{key}.npy")[0] for key in declared}
            model_header.check_params(call, declared, stored, "state buffers")
        return cls(**call["config"], name=call["layer"])
    except ModelFileError:
        raise
    except (TypeError, ValueError, RecursionError, MemoryError) as exc:  # what a config can make a constructor raise
        raise ModelFileError(f"layer {call['layer']!r} ({call['kind']}) cannot be rebuilt from config "
                             f"{call['config']!r}: {type(exc).__name__}: {exc}") from None


def _declared_params(cls, config):
    """``{name: shape}`` the layer class says ``config`` gives, or ``None`` when it does not say."""
    shapes = cls.param_shapes(**config)
    return None if shapes is None else {key: tuple(shape) for key, shape in shapes.items()}


def _declared_states(cls, config):
    """``{name: shape}`` of the state buffers the layer class says ``config`` gives, or ``None``."""
    shapes = cls.state_shapes(**config)
    return None if shapes is None else {key: tuple(shape) for key, shape in shapes.items()}


def _stored(archive, name, shape, dtype):
    """Array ``name``, which must have exactly ``shape`` and ``dtype``."""
    return _check_like(name, model_arrays.read(archive, name + ".npy"), shape, dtype)


def _check_like(name, array, shape, dtype):
    if array.shape != shape or array.dtype != dtype:
        raise ModelFileError(f"{name} has the wrong shape or dtype: {array.shape} {array.dtype}, "
                             f"the model needs {shape} {np.dtype(dtype)}")
    return array


def _fill_params(net, archive):
    for key, value in net.params.items():
        value[...] = _stored(archive, f"param/{key}", value.shape, value.dtype)


def _fill_states(net, archive):
    for key, value in net.states.items():
        value[...] = _stored(archive, f"state/{key}", value.shape, value.dtype)


def _optimizer(spec, net, archive):
    """The saved optimizer with its per-parameter state, or ``None``."""
    if spec is None:
        return None
    optimizer = model_header.optimizer(spec)
    unknown = sorted(set(spec["steps"]) - set(net.params))
    if unknown:
        raise ModelFileError(f"optimizer steps name parameters the model does not have: {', '.join(unknown)}")
    for key, value in net.params.items():
        if key in spec["steps"]:
            slots = _stored(archive, f"optimizer/{key}", (optimizer.n_slots, value.size), value.dtype)
            optimizer.set_state(value, slots, spec["steps"][key])
    return optimizer
