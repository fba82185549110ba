"""Before the first step: every rank must train the same network on the same data with
the same settings, starting from rank 0's weights and optimizer state.

A mismatch would otherwise show up as a hang (ranks sending buffers of different
sizes) or as silently wrong training, so each rank digests what it was given, the
digests are exchanged with one allgather, and any difference is an error on every
rank that says which rank differs from rank 0, and in what.
"""
import hashlib
import json

import numpy as np

from .. import __version__
from .comm import DistributedError

#: Rows of each array hashed into the fingerprint (spread over the array): catches
#: ranks given different files without reading all of them.
SAMPLED_ROWS = 16


def fingerprint(net, inputs, target, settings):
    """What must agree across ranks, as ``{aspect: JSON-able description}``."""
    calls = [[net.layer_names[id(node.layer)], node.layer.kind,
              [net.index.get(id(inp), f"input {net.inputs.index(inp)}" if inp in net.inputs else "?")
               for inp in node.inputs]]
             for node in net.calls]
    return {
        "jitbp version": __version__,
        "network": {"dtype": np.dtype(net.dtype).name, "calls": calls,
                    "parameters": {key: list(value.shape) for key, value in net.params.items()}},
        "data": {"samples": len(target),
                 "arrays": [[list(a.shape), a.dtype.name] for a in (*inputs, target)],
                 "sampled rows": _sample_digest([*inputs, target])},
        "settings": settings,
    }


def _sample_digest(arrays):
    digest = hashlib.sha256()
    for array in arrays:
        rows = np.unique(np.linspace(0, len(array) - 1, SAMPLED_ROWS).astype(np.int64))
        digest.update(np.ascontiguousarray(array[rows]).tobytes())
    return digest.hexdigest()[:16]


def check_agreement(comm, described):
    """Raise the same DistributedError on every rank unless all ``described`` agree."""
    text = json.dumps(described, sort_keys=True, default=str)
    digests = comm.allgather_bytes(hashlib.sha256(text.encode()).digest(), "comparing the ranks' setups")
    if (digests == digests[0]).all():
        return
    everyone = comm.allgather(described)  # every rank got this far: a blocking call cannot hang
    problems = [f"rank {rank} has {where} {_short(theirs)}, rank 0 {_short(ours)}"
                for rank, other in enumerate(everyone[1:], start=1)
                for where, theirs, ours in _differences(other, everyone[0])]
    raise DistributedError("the ranks were not given the same training job: " + "; ".join(problems)
                           + ". Every rank must build the same network and pass the same arrays and arguments.")


def _differences(theirs, ours, where=""):
    """``(path, theirs, ours)`` for every leaf where two descriptions differ."""
    if isinstance(theirs, dict) and isinstance(ours, dict) and theirs.keys() == ours.keys():
        for key in theirs:
            yield from _differences(theirs[key], ours[key], f"{where}.{key}" if where else key)
    elif theirs != ours:
        yield where, theirs, ours


def _short(value, limit=300):
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


def broadcast_start(comm, net, optimizer):
    """Give every rank rank 0's parameters, optimizer slots and step counts."""
    params = list(net.params.values())
    for value in params:
        comm.broadcast(value, "broadcasting rank 0's parameters")
    for layer in net.layers:  # slots exist on every rank, so that they can be averaged and restored
        optimizer.states(tuple(layer.params.values()))
    steps = comm.bcast([optimizer.state_of(value)[1] for value in params])
    for value, step in zip(params, steps):
        slots, mine = optimizer.state_of(value)
        comm.broadcast(slots, "broadcasting rank 0's optimizer state")
        optimizer.advance([value], step - mine)
