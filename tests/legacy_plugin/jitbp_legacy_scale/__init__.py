import numpy as np
from numba import njit

import jitbp
from jitbp.hookspecs import hookimpl
from jitbp.kernels import updated
from jitbp.layer import check_param, check_size


@njit(cache=True)
def scale_forward(xs, params, y, ws):
    x, w = xs[0], params[0]
    for s in range(x.shape[0]):
        for j in range(x.shape[1]):
            y[s, j] = x[s, j] * w[j]


@njit(cache=True)
def scale_backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws):
    x, w = xs[0], params[0]
    if need_dx:                                  # 1. input delta, from w as it was
        dx = dxs[0]
        for s in range(x.shape[0]):
            for j in range(x.shape[1]):
                dx[s, j] = dy[s, j] * w[j]
    for j in range(w.shape[0]):                  # 2. each weight's gradient, then its update
        g = 0.0
        for s in range(x.shape[0]):
            g += dy[s, j] * x[s, j]
        w[j] = updated(rule, w[j], g, states[0], j, hyper)


class Scale(jitbp.Layer):
    kind = "scale"                               # the name for jitbp.layer(); unique across plugins
    description = "y = x * w, one weight per feature"
    forward_kernel, backward_kernel = scale_forward, scale_backward

    def __init__(self, n, w=None, seed=None, name=None):
        super().__init__(name=name)
        self.n = check_size("scale n", n)        # bad arguments fail here, before any kernel runs
        rng = np.random.default_rng(seed)
        self.params["w"] = rng.uniform(0.5, 1.5, self.n) if w is None else check_param("scale w", w, (self.n,))

    def input_shape(self):                       # per-sample input shape, or None if any will do
        return (self.n,)

    def output_shape(self, input_shapes):        # per-sample output shape (a tuple)
        return (self.n,)

    def config(self):                            # JSON-able constructor kwargs: model files rebuild from it
        return {"n": self.n}

    @classmethod
    def param_shapes(cls, n, **_):               # the parameters a config gives: checked before building
        return {"w": (check_size("scale n", n),)}


@hookimpl
def register_layers(register):
    register(Scale)
