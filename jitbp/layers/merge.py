"""Layers that join branches: ``add`` and ``concat``."""
from numba import njit

from ..hookspecs import hookimpl
from ..layer import Layer
from ..errors import ShapeError


@njit(cache=True, error_model="numpy")
def add_forward(xs, params, y, ws):
    y[:] = xs[0]
    for k in range(1, len(xs)):
        y += xs[k]


@njit(cache=True, error_model="numpy")
def add_backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws):
    for k in range(len(dxs)):
        dxs[k][:] = dy


@njit(cache=True, error_model="numpy")
def concat_forward(xs, params, y, ws):
    n = y.shape[0]
    out = y.reshape(n, -1)
    start = 0
    for k in range(len(xs)):
        part = xs[k].reshape(n, -1)
        out[:, start:start + part.shape[1]] = part
        start += part.shape[1]


@njit(cache=True, error_model="numpy")
def concat_backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws):
    n = dy.shape[0]
    delta = dy.reshape(n, -1)
    start = 0
    for k in range(len(dxs)):
        part = dxs[k].reshape(n, -1)
        part[:, :] = delta[:, start:start + part.shape[1]]
        start += part.shape[1]


class Add(Layer):
    kind = "add"
    description = "element-wise sum of its inputs (same shapes)"
    n_inputs = None
    forward_kernel, backward_kernel = add_forward, add_backward
    cuda_kernels = "jitbp.cuda.merge.add"

    def output_shape(self, input_shapes):
        if any(shape != input_shapes[0] for shape in input_shapes):
            raise ShapeError(f"add needs inputs of one shape, got {list(input_shapes)}")
        return input_shapes[0]


class Concat(Layer):
    kind = "concat"
    description = "joins its inputs along the feature (first per-sample) axis"
    n_inputs = None
    forward_kernel, backward_kernel = concat_forward, concat_backward
    cuda_kernels = "jitbp.cuda.merge.concat"

    def output_shape(self, input_shapes):
        rests = {shape[1:] for shape in input_shapes}
        if len(rests) != 1 or any(len(shape) == 0 for shape in input_shapes):
            raise ShapeError(f"concat needs inputs that differ only in their first axis, got {list(input_shapes)}")
        return (sum(shape[0] for shape in input_shapes),) + input_shapes[0][1:]


@hookimpl
def register_layers(register):
    register(Add)
    register(Concat)
