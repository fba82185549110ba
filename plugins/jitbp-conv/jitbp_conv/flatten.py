"""``flatten``: per-sample arrays of any shape to flat feature vectors (for a following dense)."""
import math

from numba import njit

from jitbp.errors import ShapeError
from jitbp.layer import Layer


@njit(cache=True)
def flatten_forward(xs, params, y, ws):
    n = y.shape[0]
    y[:, :] = xs[0].reshape(n, y.shape[1])


@njit(cache=True)
def flatten_backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws):
    n = dy.shape[0]
    dxs[0].reshape(n, dy.shape[1])[:, :] = dy


class Flatten(Layer):
    kind = "flatten"
    description = "reshapes each sample to a flat vector (channels * length features)"
    forward_kernel, backward_kernel = flatten_forward, flatten_backward

    def output_shape(self, input_shapes):
        shape = tuple(input_shapes[0])
        if not shape:
            raise ShapeError("flatten needs per-sample arrays with at least one axis")
        return (math.prod(shape),)
