"""Model files: a zip of .npy arrays plus a JSON header; no pickled code.

The header records the format tag and version, the dtype, the graph (inputs and layer
calls by registered layer name, constructor config and providing plugin with its
version) and, optionally, the optimizer's settings and step counts; its slots are
arrays. Every array is checked by the zip's CRC-32, so a flipped byte is an error,
never a silently different weight.
"""
import errno
import json
import os
import struct
import tempfile
import zipfile
import zlib

import numpy as np

from . import checks, optim
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
    """Write ``net`` (and ``optimizer``'s state) to exactly ``path``, atomically."""
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
    if optimizer is not None:
        header["optimizer"] = _optimizer_header(net, optimizer, arrays)
    _write_atomic(path, header, arrays)


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
            spec["steps"][key] = state[1]
    return spec


def _write_atomic(path, header, arrays):
    """Write the zip to a temporary file next to ``path``, sync it, then rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=".jitbp-", suffix=".tmp", dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as handle:
            with zipfile.ZipFile(handle, "w") as archive:
                archive.writestr(HEADER, json.dumps(header))
                for name, value in arrays.items():
                    with archive.open(name + ".npy", "w") as member:
                        np.lib.format.write_array(member, np.ascontiguousarray(value), allow_pickle=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(path):
    """The network saved at ``path``; ``net.saved_optimizer`` holds a saved optimizer, if any."""
    path = os.fspath(path)
    header, arrays = _read(path)
    try:
        net = _build(header, path)
        _fill_params(net, arrays, path)
        net.saved_optimizer = _optimizer(header.get("optimizer"), net, arrays, path)
    except ModelFileError:
        raise
    except READ_ERRORS as exc:
        raise ModelFileError(f"{path}: malformed jitbp model ({type(exc).__name__}: {exc})") from None
    return net


def _read(path):
    """The header and every array of the zip at ``path``."""
    try:
        with zipfile.ZipFile(path) as archive:
            header = _read_header(archive)
            arrays = {name[:-4]: _read_array(archive, name) for name in archive.namelist() if name.endswith(".npy")}
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    except PLAIN_OS_ERRORS:
        raise
    except (OSError, *READ_ERRORS) as exc:
        raise ModelFileError(f"{path} is not a readable jitbp model file ({type(exc).__name__}: {exc})") from None
    return header, arrays


def _read_header(archive):
    try:
        header = json.loads(archive.read(HEADER))
    except KeyError:
        raise ModelFileError("not a jitbp model file (no header)") from None
    except ValueError as exc:  # also UnicodeDecodeError
        raise ModelFileError(f"corrupt model header: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError("not a jitbp model file (wrong format tag)")
    version = header.get("version")
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise ModelFileError(f"model format version {version} is newer than this jitbp reads "
                             f"({FORMAT_VERSION}); upgrade jitbp")
    if version != FORMAT_VERSION:
        raise ModelFileError(f"unsupported model format version {version!r}")
    return header


def _read_array(archive, name):
    with archive.open(name) as member:
        return np.lib.format.read_array(member, allow_pickle=False)


def _build(header, path):
    """The network the header describes, with freshly initialised parameters."""
    from .network import Network

    nodes = [Input(tuple(shape)) for shape in header["inputs"]]
    layers = {}
    for call in header["calls"]:
        if call["layer"] not in layers:
            layers[call["layer"]] = _layer(call, path)
        if not all(type(k) is int and 0 <= k < len(nodes) for k in call["inputs"]):
            raise ModelFileError(f"{path}: call {call['layer']!r} reads inputs {call['inputs']!r}, "
                                 f"which are not earlier nodes of the graph")
        nodes.append(layers[call["layer"]](*(nodes[k] for k in call["inputs"])))
    return Network(nodes[:len(header["inputs"])], nodes[-1], dtype=checks.as_dtype(header["dtype"]))


def _layer(call, path):
    """A layer rebuilt from its registered name and config."""
    try:
        cls = registry().layer_class(call["kind"])
    except UnknownNameError:
        raise ModelFileError(
            f"{path} uses layer {call['kind']!r} from plugin {call['plugin']!r} "
            f"(version {call['plugin_version']}), which is not installed") from None
    return cls(**call["config"], name=call["layer"])


def _stored(arrays, name, like, path):
    """Array ``name``, which must match ``like``'s shape and dtype exactly."""
    stored = arrays.get(name)
    if stored is None or stored.shape != like.shape or stored.dtype != like.dtype:
        raise ModelFileError(f"{path}: {name} is missing or has the wrong shape or dtype")
    return stored


def _fill_params(net, arrays, path):
    for key, value in net.params.items():
        value[...] = _stored(arrays, f"param/{key}", value, path)


def _optimizer(spec, net, arrays, path):
    """The saved optimizer with its per-parameter state, or ``None``."""
    if spec is None:
        return None
    cls = optim.OPTIMIZERS.get(spec.get("class"))
    if cls is None:
        raise ModelFileError(f"{path}: unknown optimizer {spec.get('class')!r}")
    settings = dict(spec["settings"])
    if "betas" in settings:
        settings["betas"] = tuple(settings["betas"])
    optimizer = cls(**settings)
    for key, value in net.params.items():
        if key in spec["steps"]:
            step = spec["steps"][key]
            if type(step) is not int or step < 1:
                raise ModelFileError(f"{path}: optimizer step {step!r} of {key} is not a positive integer")
            like = np.empty((optimizer.n_slots, value.size), value.dtype)
            optimizer.set_state(value, _stored(arrays, f"optimizer/{key}", like, path), step)
    return optimizer
