"""Graph construction: ``Input`` nodes and the nodes layer calls return."""
import numbers

import numpy as np

from .culprit import check_output_shape, check_workspace_shapes
from .errors import ShapeError


class Node:
    """A value in the graph: a network input, or the output of one layer call."""

    def __init__(self, shape, layer=None, inputs=()):
        self.shape = tuple(shape)
        self.layer = layer
        self.inputs = tuple(inputs)

    @property
    def is_input(self):
        return self.layer is None

    def __repr__(self):
        source = "Input" if self.is_input else self.layer.kind
        return f"<Node {source} {self.shape}>"


def Input(shape):
    """A network input holding samples of ``shape`` (an int for flat features)."""
    if isinstance(shape, numbers.Integral):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or not all(
            isinstance(s, numbers.Integral) and not isinstance(s, (bool, np.bool_)) for s in shape):
        raise TypeError(f"Input shape must be an int or a tuple of ints, got {shape!r}")
    shape = tuple(int(s) for s in shape)
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"Input shape must be positive, got {shape}")
    return Node(shape)


def call_layer(layer, inputs):
    """The node for ``layer`` applied to ``inputs``, with shapes checked now."""
    if not inputs or not all(isinstance(node, Node) for node in inputs):
        raise TypeError(f"{layer.kind} must be called on graph nodes (jitbp.Input or a layer's output)")
    if layer.n_inputs is not None and len(inputs) != layer.n_inputs:
        raise TypeError(f"{layer.kind} takes {layer.n_inputs} input(s), got {len(inputs)}")
    shapes = [node.shape for node in inputs]
    wanted = layer.input_shape()
    if wanted is not None and shapes[0] != tuple(wanted):
        raise ShapeError(f"{layer.kind} expects per-sample input shape {tuple(wanted)}, got {shapes[0]}")
    output = check_output_shape(layer, shapes, layer.output_shape(shapes))
    check_workspace_shapes(layer, 1, shapes)
    return Node(output, layer, inputs)


def topological_calls(output):
    """Call nodes that ``output`` depends on, each after all of its inputs."""
    order, seen, stack = [], set(), [(output, False)]
    while stack:
        node, expanded = stack.pop()
        if node.is_input or (id(node) in seen and not expanded):
            continue
        if expanded:
            order.append(node)
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((inp, False) for inp in reversed(node.inputs))
    return order


def reachable_inputs(calls, output):
    """Input nodes the graph reads, in first-use order."""
    found = [output] if output.is_input else []
    for node in calls:
        found.extend(inp for inp in node.inputs if inp.is_input and inp not in found)
    return found
