"""Model files: a zip of .npy arrays plus a JSON header; no pickled code.

The header records the format version, the dtype, the graph (inputs and layer
calls by registered layer name, constructor config and providing plugin with its
version) and, optionally, the optimizer's settings and state.
"""
import json
import os
import tempfile
import zipfile

import numpy as np

from . import optim
from .errors import ModelFileError, UnknownNameError
from .graph import Input
from .plugins import registry

FORMAT = "jitbp-model"
FORMAT_VERSION = 1
HEADER = "header.json"


def save(net, path, optimizer=None):
    """Write ``net`` (and ``optimizer``'s state) to ``path`` atomically."""
    path = os.fspath(path)
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
    arrays = {f"param/{key}": value for key, value in net.params.items()}
    header = {"format": FORMAT, "version": FORMAT_VERSION, "dtype": np.dtype(net.dtype).name,
              "inputs": [list(node.shape) for node in net.inputs], "calls": calls}
    if optimizer is not None:
        header["optimizer"] = {"class": type(optimizer).__name__, "settings": optimizer.settings(), "steps": {}}
        for key, value in net.params.items():
            state = optimizer.state_of(value)
            if state is not None:
                arrays[f"optimizer/{key}"] = state[0]
                header["optimizer"]["steps"][key] = state[1]
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".jitbp-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle, zipfile.ZipFile(handle, "w") as archive:
            archive.writestr(HEADER, json.dumps(header))
            for name, value in arrays.items():
                with archive.open(name + ".npy", "w") as member:
                    np.lib.format.write_array(member, np.ascontiguousarray(value), allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(path):
    """The network saved at ``path``; ``net.saved_optimizer`` holds a saved optimizer, if any."""
    from .network import Network

    path = os.fspath(path)
    try:
        with zipfile.ZipFile(path) as archive:
            header = _read_header(archive)
            arrays = {name[:-4]: _read_array(archive, name) for name in archive.namelist() if name.endswith(".npy")}
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ModelFileError(f"{path} is not a readable jitbp model file: {exc}") from None
    nodes = [Input(tuple(shape)) for shape in header["inputs"]]
    layers = {}
    reg = registry()
    for call in header["calls"]:
        if call["layer"] not in layers:
            try:
                cls = reg.layer_class(call["kind"])
            except UnknownNameError:
                raise ModelFileError(
                    f"{path} uses layer {call['kind']!r} from plugin {call['plugin']!r} "
                    f"(version {call['plugin_version']}), which is not installed") from None
            layers[call["layer"]] = cls(**call["config"], name=call["layer"])
        nodes.append(layers[call["layer"]](*(nodes[k] for k in call["inputs"])))
    net = Network(nodes[:len(header["inputs"])], nodes[-1], dtype=np.dtype(header["dtype"]).type)
    for key, value in net.params.items():
        stored = arrays.get(f"param/{key}")
        if stored is None or stored.shape != value.shape:
            raise ModelFileError(f"{path}: parameter {key} is missing or has the wrong shape")
        value[...] = stored
    net.saved_optimizer = _optimizer(header.get("optimizer"), net, arrays, path)
    return net


def _read_header(archive):
    try:
        header = json.loads(archive.read(HEADER))
    except KeyError:
        raise ModelFileError("not a jitbp model file (no header)") from None
    except ValueError as exc:
        raise ModelFileError(f"corrupt model header: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError("not a jitbp model file (wrong format tag)")
    if header.get("version") != FORMAT_VERSION:
        raise ModelFileError(f"model format version {header.get('version')} is not supported "
                             f"(this jitbp reads version {FORMAT_VERSION}); upgrade jitbp")
    return header


def _read_array(archive, name):
    try:
        with archive.open(name) as member:
            return np.lib.format.read_array(member, allow_pickle=False)
    except (ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelFileError(f"corrupt array {name}: {exc}") from None


def _optimizer(spec, net, arrays, path):
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
            optimizer.set_state(value, arrays[f"optimizer/{key}"], spec["steps"][key])
    return optimizer
