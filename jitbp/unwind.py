"""Where each call's input deltas go when the tape unwinds: fixed by the graph, shared
by the interpreted engine, the captured epoch and the CUDA engine."""
from typing import NamedTuple


class BackwardStep(NamedTuple):
    """One call's unwinding.

    ``delta_of[slot]`` is the index of the call whose delta buffer input ``slot``
    writes directly, or ``None`` for a private scratch buffer (network inputs, and
    nodes whose delta an earlier-unwound consumer already wrote); ``fan_in`` lists
    ``(slot, call index)`` scratch deltas to add into that already written delta.
    """

    delta_of: tuple
    fan_in: tuple
    need_dx: bool


def backward_plan(net):
    """The :class:`BackwardStep` of every call of ``net``, in call order: the first
    unwound consumer of a node writes its delta, later ones add into it."""
    written = {id(net.output)}
    plan = [None] * len(net.calls)
    for i in reversed(range(len(net.calls))):
        node = net.calls[i]
        delta_of, fan_in = [], []
        for slot, inp in enumerate(node.inputs):
            if inp.is_input or id(inp) in written:
                delta_of.append(None)
                if not inp.is_input:
                    fan_in.append((slot, net.index[id(inp)]))
            else:
                delta_of.append(net.index[id(inp)])
                written.add(id(inp))
        need_dx = not all(inp.is_input for inp in node.inputs)
        plan[i] = BackwardStep(tuple(delta_of), tuple(fan_in), need_dx)
    return plan
