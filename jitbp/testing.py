"""A conformance kit for layer plugins, in the spirit of scikit-learn's ``parametrize_with_checks``.

In a plugin's test module::

    from jitbp.testing import LayerCase, parametrize_with_checks

    CASES = [LayerCase("conv1d", 2, 3, 3, input_shapes=[(2, 7)], seed=0)]

    @parametrize_with_checks(CASES, expected_failures={"conv1d(2,3,3)": {"check_cuda": "no GPU twin yet"}})
    def test_conformance(case, check):
        check(case)

Each check takes a :class:`LayerCase` and raises ``AssertionError`` (or
``unittest.SkipTest`` with its reason) on a layer that breaks the contract in
``jitbp.layer``. Networks under test put a trainable element-wise :class:`Probe`
before the layer, so the layer's input deltas reach a parameter even when the layer
itself has none.
"""
import importlib
import json
import os
import re
import tempfile
import unittest
import zlib
from importlib.metadata import entry_points

import numpy as np
from numba import njit
from numba.core.caching import NullCache

from . import kernels, optim, tiers
from .context import Context
from .culprit import COMPILE_ERRORS, compile_error
from .gradcheck import SCALE_FLOOR, gradcheck
from .graph import Input
from .isolated import call, isolated
from .layer import Layer
from .network import Network
from .plugins import DEFAULT_PLUGINS, ENTRY_POINT_GROUP, layer as build_layer, registry
from .serialization import load

#: Largest relative error accepted between analytic and central-difference derivatives.
GRAD_TOL = 1e-6
#: Relative tolerance between float32 and float64 results of the same network.
FLOAT32_TOL = 1e-3


class LayerCase:
    """A registered layer to check: built by ``jitbp.layer(kind, *args, **kwargs)`` for inputs of
    ``input_shapes`` (per-sample shapes, one per input). ``id`` names the test cases (by default
    the call, keyword arguments included: ``conv1d(2,3,3,stride=2,seed=0)``). ``isolate=True``
    runs each check in a child process, so a layer that crashes it fails that check only."""

    def __init__(self, kind, *args, input_shapes, id=None, isolate=False, **kwargs):
        self.kind, self.args, self.kwargs = kind, args, kwargs
        self.input_shapes = [tuple(shape) for shape in input_shapes]
        self.isolate = isolate
        self.id = id or case_id(kind, args, kwargs)
        #: The id kits before keyword arguments gave (``expected_failures`` may still use it).
        self.legacy_id = f"{kind}({','.join(map(repr, args))})"

    def make(self):
        """A fresh layer (the same parameters every time when the arguments fix a seed)."""
        return build_layer(self.kind, *self.args, **self.kwargs)

    def __repr__(self):
        return f"LayerCase({self.id})"


def case_id(kind, args, kwargs):
    """``kind(arg,...,key=value,...)``: stable across runs (arrays by shape and a digest of their
    bytes, never by address) and without whitespace or brackets, so pytest ids stay selectable."""
    parts = [_id_value(a) for a in args] + [f"{key}={_id_value(value)}" for key, value in kwargs.items()]
    return f"{kind}({','.join(parts)})"


def _id_value(value):
    if isinstance(value, np.ndarray):
        digest = zlib.crc32(np.ascontiguousarray(value).tobytes() + value.dtype.str.encode())
        return f"array({'x'.join(map(str, value.shape))}:{digest:08x})"
    if isinstance(value, np.generic):
        return _id_value(value.item())
    if isinstance(value, (tuple, list)):
        return f"({','.join(map(_id_value, value))})"
    if isinstance(value, dict):
        return f"({','.join(f'{k}={_id_value(v)}' for k, v in value.items())})"
    if isinstance(value, str):
        return value if re.fullmatch(r"[\w.+-]+", value) else re.sub(r"[\s\[\]]", "_", repr(value))
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    return type(value).__name__  # an object's repr may hold its address


def builtin_cases():
    """Cases covering every layer jitbp ships."""
    flat = [(4,)]
    cases = [LayerCase("dense", 4, 3, input_shapes=flat, seed=0),
             LayerCase("dense", 4, 3, bias=False, input_shapes=flat, seed=1),
             # above dense.TINY_WEIGHTS: the kernels that are not inlined, and backward_forward_kernel
             LayerCase("dense", 12, 9, input_shapes=[(12,)], seed=2),
             LayerCase("dense", 12, 9, bias=False, input_shapes=[(12,)], seed=3)]
    cases += [LayerCase(kind, input_shapes=[(2, 3)]) for kind in ("sigmoid", "tanh", "relu", "identity", "step")]
    cases += [LayerCase("softmax", input_shapes=flat),
              LayerCase("add", input_shapes=[(3,), (3,)], id="add(2 inputs)"),
              LayerCase("concat", input_shapes=[(3,), (2,)], id="concat(2 inputs)")]
    cases += contract2_cases()
    return cases


def contract2_cases():
    """Cases of the built-in layers written against contract 2 (free and gradient tiers)."""
    shaped = [(2, 3)]
    return [LayerCase("dropout", 0.3, input_shapes=shaped),
            LayerCase("dropout", 0.0, input_shapes=[(4,)]),
            LayerCase("batchnorm", 4, input_shapes=[(4,)]),
            LayerCase("batchnorm", 2, momentum=0.2, eps=1e-3, input_shapes=shaped),
            LayerCase("layernorm", 4, input_shapes=[(4,)]),
            LayerCase("layernorm", 3, elementwise_affine=False, input_shapes=shaped),
            LayerCase("leaky_relu", 0.2, input_shapes=shaped),
            LayerCase("elu", 0.7, input_shapes=shaped),
            LayerCase("gelu", input_shapes=shaped),
            LayerCase("gelu", approximate="tanh", input_shapes=shaped),
            LayerCase("silu", input_shapes=shaped),
            LayerCase("softplus", 2.0, 1.5, input_shapes=shaped)]


# --- the probe: y = x * w element-wise, w shaped like one sample -------------------------------


@njit(cache=True)
def probe_forward(xs, params, y, ws):
    x = xs[0]
    n = x.shape[0]
    xf, yf, w = x.reshape(n, x.size // n), y.reshape(n, x.size // n), params[0].reshape(-1)
    for s in range(n):
        for i in range(w.size):
            yf[s, i] = xf[s, i] * w[i]


@njit(cache=True)
def probe_backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws):
    x = xs[0]
    n = x.shape[0]
    xf, dyf, w = x.reshape(n, x.size // n), dy.reshape(n, x.size // n), params[0].reshape(-1)
    if need_dx:
        dxf = dxs[0].reshape(n, x.size // n)
        for s in range(n):
            for i in range(w.size):
                dxf[s, i] = dyf[s, i] * w[i]
    for i in range(w.size):
        g = 0.0
        for s in range(n):
            g += dyf[s, i] * xf[s, i]
        w[i] = kernels.updated(rule, w[i], g, states[0], i, hyper)


class Probe(Layer):
    """Element-wise trainable scale the kit puts before the layer under test (not registered)."""

    kind = "probe"
    forward_kernel, backward_kernel = probe_forward, probe_backward

    def __init__(self, shape, seed=None, name=None):
        super().__init__(name=name)
        self.shape = tuple(shape)
        self.params["w"] = np.random.default_rng(seed).uniform(0.5, 1.5, self.shape)

    def input_shape(self):
        return self.shape


# --- helpers -----------------------------------------------------------------------------------


def _network(case, dtype=np.float64, head=None):
    """Inputs -> probes -> a fresh layer (-> ``head(h)``), and the layer."""
    layer = case.make()
    inputs = [Input(shape) for shape in case.input_shapes]
    h = layer(*(Probe(shape, seed=k)(x) for k, (shape, x) in enumerate(zip(case.input_shapes, inputs))))
    return Network(inputs, head(h) if head else h, dtype=dtype), layer


def _data(net, n, seed=0):
    rng = np.random.default_rng(seed)
    X = [rng.normal(size=(n,) + x.shape) for x in net.inputs]
    return (X[0] if len(X) == 1 else X), rng.normal(size=(n,) + net.output.shape)


def _rows(X, rows):
    return [x[rows] for x in X] if isinstance(X, list) else X[rows]


def _copy_params(source, target):
    for key, value in source.params.items():
        target.params[key][...] = value


def _gradients_at(net, X, Y, step):
    """``net.gradients`` at ``step`` of a ``learn(seed=0)`` run, the states left unchanged
    (so a random layer draws the same numbers as that learn step)."""
    states = {key: value.copy() for key, value in net.states.items()}
    grads = net.gradients(X, Y, seed=0, step=step)
    for key, value in net.states.items():
        value[...] = states[key]
    return grads


def _assert_close(name, actual, expected, rtol):
    scale = max(float(np.max(np.abs(expected), initial=0.0)), SCALE_FLOOR)
    err = float(np.max(np.abs(np.asarray(actual, np.float64) - expected), initial=0.0)) / scale
    assert err <= rtol, f"{name}: relative error {err:.3g} > {rtol:g}"


class _Kernels:
    """Direct calls of one layer's kernels, outside any network, in the form of its tier
    (:mod:`jitbp.tiers`). Before each call the output, the input deltas, the gradient
    scratch and the workspaces not kept from forward to backward are filled with NaN,
    so a kernel that reads undefined memory or leaves elements unwritten fails here."""

    def __init__(self, layer, input_shapes, batch, dtype, seed=0):
        rng = np.random.default_rng(seed)
        shapes = [tuple(s) for s in input_shapes]
        self.layer = layer
        self.form = tiers.form(layer)
        self.xs = tuple(rng.normal(size=(batch,) + s).astype(dtype) for s in shapes)
        self.params = tuple(np.ascontiguousarray(p, dtype) for p in layer.params.values())
        self.state = tuple(np.array(v, dtype) for v in layer.state.values())
        self.settings = tiers.pack_settings(layer, layer.kind)
        self.ws = tuple(np.empty(s, dtype) for s in layer.workspace_shapes(batch, shapes))
        kept = layer.kept_workspaces
        self.undefined = () if kept is None else tuple(k for k in range(len(self.ws)) if k not in kept)
        self.y_shape = (batch,) + tuple(layer.output_shape(shapes))
        self.dy = rng.normal(size=self.y_shape).astype(dtype)

    def context(self, training=True, step=1, key=7):
        """The Context of a call (``None`` for a contract-1 layer)."""
        if self.form == tiers.CONTRACT1:
            return None
        return Context(training, self.settings, self.state, self.ws, np.uint64(key), np.int64(step))

    def _clear_workspaces(self):
        for k in self.undefined:
            self.ws[k][...] = np.nan

    def forward(self, training=True, step=1, key=7):
        y = np.full(self.y_shape, np.nan, self.xs[0].dtype)
        self._clear_workspaces()
        try:
            tiers.forward(self.form, self.layer.forward_kernel, xs=self.xs, params=self.params, y=y, ws=self.ws,
                          ctx=self.context(training, step, key))
        except COMPILE_ERRORS as error:
            raise compile_error(self.layer, "forward_kernel", error) from error
        return y

    def backward(self, y, rule=kernels.ACCUMULATE, hyper=kernels.NO_HYPER, slots=1, step=1, key=7):
        """Input deltas of ``sum(dy * y)`` and the optimizer states after ``rule``: with
        ``ACCUMULATE``, the parameter gradients, reshaped like the parameters."""
        dxs = tuple(np.full_like(x, np.nan) for x in self.xs)
        states = tuple(np.zeros((slots, p.size), p.dtype) for p in self.params)
        grads = tuple(np.full_like(p, np.nan) for p in self.params) if self.form == tiers.GRADIENT else ()
        self._clear_workspaces()
        try:
            tiers.backward(self.form, self.layer.backward_kernel, xs=self.xs, y=y, dy=self.dy, dxs=dxs,
                           need_dx=True, params=self.params, rule=rule, hyper=hyper, states=states, grads=grads,
                           ws=self.ws, ctx=self.context(True, step, key))
        except COMPILE_ERRORS as error:
            raise compile_error(self.layer, "backward_kernel", error) from error
        for (name, _), grad in zip(self.layer.params.items(), grads):
            assert np.all(np.isfinite(grad)), (
                f"layer {self.layer.kind!r}: backward_kernel left elements of grads for {name} unwritten (NaN)")
        for param, grad, state in zip(self.params, grads, states):
            kernels.apply_gradient(rule, param, grad, state, hyper)
        if rule == kernels.ACCUMULATE:
            states = tuple(s.reshape(p.shape) for s, p in zip(states, self.params))
        return dxs, states

    def objective(self):
        return float(np.sum(self.dy * self.forward()))

    def numerical(self, array, eps=1e-6):
        grad = np.empty_like(array)
        flat, out = array.reshape(-1), grad.reshape(-1)
        states = [s.copy() for s in self.state]
        for i in range(flat.size):
            saved = flat[i]
            flat[i] = saved + eps
            upper = self.objective()
            flat[i] = saved - eps
            lower = self.objective()
            flat[i] = saved
            out[i] = (upper - lower) / (2 * eps)
            for s, old in zip(self.state, states):
                s[...] = old
        return grad


def _kernel_pass(layer, input_shapes, batch, dtype):
    run = _Kernels(layer, input_shapes, batch, dtype)
    run.backward(run.forward())


# --- the reference optimizer step, in plain NumPy (torch.optim's formulas) ----------------------


def _reference_step(opt, p, g, state, step):
    """``p`` after one step of ``opt`` with gradient ``g``; ``state`` is a dict kept per parameter."""
    g = g + opt.weight_decay * p
    if isinstance(opt, optim.SGD):
        if opt.momentum:
            buf = g if step == 1 else opt.momentum * state["buf"] + (1 - opt.dampening) * g
            state["buf"] = buf
            g = g + opt.momentum * buf if opt.nesterov else buf
        return p - opt.lr * g
    if isinstance(opt, optim.Adam):
        b1, b2 = opt.betas
        state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * g
        state["v"] = b2 * state.get("v", 0.0) + (1 - b2) * g * g
        denom = np.sqrt(state["v"]) / np.sqrt(1 - b2 ** step) + opt.eps
        return p - opt.lr / (1 - b1 ** step) * state["m"] / denom
    if isinstance(opt, optim.RMSprop):
        state["v"] = opt.alpha * state.get("v", 0.0) + (1 - opt.alpha) * g * g
        return p - opt.lr * g / (np.sqrt(state["v"]) + opt.eps)
    if isinstance(opt, optim.Adagrad):
        state["s"] = state.get("s", 0.0) + g * g
        return p - opt.lr / (1 + (step - 1) * opt.lr_decay) * g / (np.sqrt(state["s"]) + opt.eps)
    raise TypeError(f"no reference step for {opt!r}")


def optimizers():
    """One of each optimizer the fused-update check runs, with non-default settings."""
    return [optim.SGD(lr=0.1), optim.SGD(lr=0.1, momentum=0.9, weight_decay=0.01),
            optim.SGD(lr=0.1, momentum=0.9, nesterov=True), optim.Adam(lr=0.01),
            optim.RMSprop(lr=0.01), optim.Adagrad(lr=0.1, lr_decay=0.01)]


# --- the checks ----------------------------------------------------------------------------------


def check_derivatives(case):
    """Input deltas and parameter gradients from the kernels match central differences (float64);
    the kernels write every output and input-delta element and the ACCUMULATE rule changes no parameter."""
    run = _Kernels(case.make(), case.input_shapes, batch=2, dtype=np.float64)
    kind = run.layer.kind
    states = [s.copy() for s in run.state]
    y = run.forward()
    assert np.all(np.isfinite(y)), (f"layer {kind!r}: forward_kernel left output elements unwritten (NaN), "
                                    f"or read an undefined workspace")
    before = [p.copy() for p in run.params]
    dxs, grads = run.backward(y)
    for k, dx in enumerate(dxs):
        assert np.all(np.isfinite(dx)), (f"layer {kind!r}: backward_kernel left elements of input delta {k} "
                                         f"unwritten (NaN), or read a workspace not in kept_workspaces")
    for s, old in zip(run.state, states):
        s[...] = old
    for p, old in zip(run.params, before):
        np.testing.assert_array_equal(p, old, err_msg="the ACCUMULATE rule must leave parameters unchanged")
    named = [(f"input delta {k}", dx, x) for k, (dx, x) in enumerate(zip(dxs, run.xs))]
    named += [(f"gradient of {key}", g, p) for key, g, p in zip(run.layer.params, grads, run.params)]
    for name, analytic, array in named:
        _assert_close(name, analytic, run.numerical(array), GRAD_TOL)


def check_fused_update(case):
    """Two ``learn`` steps equal ``gradients`` plus the optimizer's formula in NumPy, for every optimizer."""
    for opt in optimizers():
        net, _ = _network(case)
        X, Y = _data(net, 3)
        expected = {key: value.copy() for key, value in net.params.items()}
        states = {key: {} for key in expected}
        for step in (1, 2):
            grads = _gradients_at(net, X, Y, step)
            expected = {key: _reference_step(opt, expected[key], grads[key], states[key], step)
                        for key in expected}
            net.learn(X, Y, optimizer=opt, epochs=1, batch_size=None, shuffle=False, seed=0)
            for key, value in net.params.items():
                np.testing.assert_allclose(value, expected[key], rtol=1e-9, atol=1e-12,
                                           err_msg=f"{opt!r}, step {step}, parameter {key}")


def check_batch_of_one(case):
    """Each sample's output is independent of the batch; ``batch_size=1`` equals online SGD steps."""
    net, _ = _network(case)
    X, Y = _data(net, 3)
    whole = net.predict(X)
    for i in range(3):
        np.testing.assert_allclose(net.predict(_rows(X, slice(i, i + 1)))[0], whole[i], rtol=1e-12, atol=1e-12,
                                   err_msg=f"sample {i} alone differs from sample {i} in a batch")
    online, _ = _network(case)
    _copy_params(net, online)
    lr = 0.05
    net.learn(X, Y, optimizer=optim.SGD(lr=lr), epochs=1, batch_size=1, shuffle=False, seed=0)
    for i in range(3):
        grads = _gradients_at(online, _rows(X, slice(i, i + 1)), Y[i:i + 1], i + 1)
        for key, value in online.params.items():
            value -= lr * grads[key]
    for key, value in net.params.items():
        np.testing.assert_allclose(value, online.params[key], rtol=1e-10, atol=1e-12, err_msg=key)


def check_backward_forward(case):
    """``backward_forward_kernel``, if the layer has one, equals ``backward_kernel`` then
    ``forward_kernel`` on the next batch: plain SGD, momentum and Adam, batches 1 and 2,
    with and without input deltas, in float64 and float32."""
    layer = case.make()
    if layer.backward_forward_kernel is None or tiers.form(layer) != tiers.CONTRACT1:
        raise unittest.SkipTest(f"layer {case.kind!r} has no backward_forward_kernel")
    for dtype, rtol in ((np.float64, 1e-12), (np.float32, 1e-5)):
        for batch in (1, 2):
            for need_dx in (True, False):
                for opt in (optim.SGD(lr=0.1), optim.SGD(lr=0.1, momentum=0.9), optim.Adam(lr=0.01)):
                    where = f"{np.dtype(dtype).name}, batch {batch}, need_dx={need_dx}, {opt!r}"
                    _compare_backward_forward(case, dtype, batch, need_dx, opt, rtol, where)


def _compare_backward_forward(case, dtype, batch, need_dx, opt, rtol, where):
    separate = _Kernels(case.make(), case.input_shapes, batch, dtype)
    fused = _Kernels(case.make(), case.input_shapes, batch, dtype)
    fused.params = tuple(p.copy() for p in separate.params)
    following = _Kernels(case.make(), case.input_shapes, batch, dtype, seed=1).xs
    y = separate.forward()
    outcomes = []
    for run in (separate, fused):
        states = opt.states(run.params)
        dxs = tuple(np.full_like(x, np.nan) for x in run.xs)
        next_y = np.full(run.y_shape, np.nan, dtype)
        args = (run.xs, y, run.dy, dxs, need_dx, run.params, opt.rule, opt.hyper(1), states, run.ws)
        if run is separate:
            tiers.backward(tiers.CONTRACT1, run.layer.backward_kernel, **dict(zip(
                tiers.BACKWARD_ARGS[tiers.CONTRACT1], args)))
            tiers.forward(tiers.CONTRACT1, run.layer.forward_kernel, xs=following, params=run.params, y=next_y,
                          ws=run.ws)
        else:
            run.layer.backward_forward_kernel(*args, following, next_y)
        outcomes.append(dict(enumerate((dxs if need_dx else ()) + run.params + states + (next_y,))))
    for k, expected in outcomes[0].items():
        _assert_close(f"{where}: input delta, parameter, state or next output #{k}", outcomes[1][k], expected,
                      rtol)


def check_prediction_mode(case):
    """A training=False forward is deterministic (whatever the key and step) and changes no state."""
    run = _Kernels(case.make(), case.input_shapes, batch=3, dtype=np.float64)
    kind = run.layer.kind
    states = [s.copy() for s in run.state]
    first = run.forward(training=False, step=0, key=1)
    assert np.all(np.isfinite(first)), f"layer {kind!r}: prediction-mode forward left output elements unwritten"
    for name, s, old in zip(run.layer.state, run.state, states):
        np.testing.assert_array_equal(s, old, err_msg=f"layer {kind!r}: prediction changed state {name!r}")
    again = run.forward(training=False, step=0, key=2)
    np.testing.assert_array_equal(again, first, err_msg=f"layer {kind!r}: prediction-mode forward is not "
                                                        f"deterministic")
    net, _ = _network(case)
    X, _ = _data(net, 3)
    saved = {key: value.copy() for key, value in net.states.items()}
    np.testing.assert_array_equal(net.predict(X), net.predict(X), err_msg=f"layer {kind!r}: predict repeats")
    for key, value in net.states.items():
        np.testing.assert_array_equal(value, saved[key], err_msg=f"layer {kind!r}: predict changed state {key}")


def check_random_stream(case):
    """The training forward is keyed: the same key and step (and state) give the same output and state."""
    outcomes = []
    for _ in range(2):
        run = _Kernels(case.make(), case.input_shapes, batch=3, dtype=np.float64)
        y = run.forward(training=True, step=3, key=11)
        outcomes.append((y, run.state))
    kind = case.make().kind
    np.testing.assert_array_equal(outcomes[1][0], outcomes[0][0],
                                  err_msg=f"layer {kind!r}: the same key and step gave another output")
    for k, (a, b) in enumerate(zip(outcomes[0][1], outcomes[1][1])):
        np.testing.assert_array_equal(b, a, err_msg=f"layer {kind!r}: the same key and step gave another state {k}")


def check_fan_out(case):
    """The layer's output feeding two layers (joined by ``add``) gets the sum of their deltas."""
    net, _ = _network(case, head=lambda h: build_layer("add")(build_layer("identity")(h), build_layer("tanh")(h)))
    X, Y = _data(net, 3)
    err = gradcheck(net, X, Y)
    assert err <= GRAD_TOL, f"gradcheck with fan-out: relative error {err:.3g}"


def check_shared(case):
    """One layer object called on two sets of inputs updates once, with the summed gradient."""
    layer = case.make()
    groups = [[Input(shape) for shape in case.input_shapes] for _ in range(2)]
    probed = [[Probe(shape, seed=2 * g + k)(x) for k, (shape, x) in enumerate(zip(case.input_shapes, xs))]
              for g, xs in enumerate(groups)]
    net = Network(groups[0] + groups[1], build_layer("add")(layer(*probed[0]), layer(*probed[1])))
    X, Y = _data(net, 3)
    err = gradcheck(net, X, Y)
    assert err <= GRAD_TOL, f"gradcheck with the layer called twice: relative error {err:.3g}"
    # Adam tells one update with the summed gradient from two updates (SGD would not).
    opt = optim.Adam(lr=0.01)
    grads = _gradients_at(net, X, Y, 1)
    expected = {key: _reference_step(opt, value.copy(), grads[key], {}, 1) for key, value in net.params.items()}
    net.learn(X, Y, optimizer=opt, epochs=1, batch_size=None, shuffle=False, seed=0)
    for key, value in net.params.items():
        np.testing.assert_allclose(value, expected[key], rtol=1e-9, atol=1e-12,
                                   err_msg=f"Adam step with the layer called twice, parameter {key}")


def check_dtypes(case):
    """float32 networks give float32 results that agree with float64 (predict, gradients, a step)."""
    net64, _ = _network(case, np.float64)
    net32, _ = _network(case, np.float32)
    _copy_params(net64, net32)
    X, Y = _data(net64, 4)
    for net in (net64, net32):
        assert net.predict(X).dtype == net.dtype, f"predict of a {net.dtype.__name__} network has another dtype"
    _assert_close("float32 predict", net32.predict(X), net64.predict(X), FLOAT32_TOL)
    g64, g32 = net64.gradients(X, Y), net32.gradients(X, Y)
    for key in g64:
        assert g32[key].dtype == np.float32, f"gradient {key} of the float32 network is {g32[key].dtype}"
        _assert_close(f"float32 gradient {key}", g32[key], g64[key], FLOAT32_TOL)
    for net in (net64, net32):
        net.learn(X, Y, optimizer=optim.Adam(lr=0.01), epochs=1, shuffle=False, seed=0)
    for key, value in net64.params.items():
        assert net32.params[key].dtype == np.float32, f"{key} is no longer float32 after learn"
        _assert_close(f"float32 parameter {key} after a step", net32.params[key], value, FLOAT32_TOL)


def check_entry_point(case):
    """The layer's class is the registered one, and a third-party one comes from its ``jitbp`` entry point."""
    layer = case.make()
    info = registry().layers.get(layer.kind)
    assert info is not None, f"layer {layer.kind!r} is not in the registry"
    assert type(layer) is info.cls, f"{type(layer).__name__} is not the registered class {info.cls.__name__}"
    if info.plugin in DEFAULT_PLUGINS:
        return
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == info.plugin]
    assert found, f"plugin {info.plugin!r} has no entry point in the {ENTRY_POINT_GROUP!r} group"
    registered = []
    found[0].load().register_layers(register=registered.append)
    assert info.cls in registered, f"entry point {found[0].value!r} does not register {info.cls.__name__}"


def check_config(case):
    """``config()`` rebuilds an equivalent layer, and a saved network loads with the same output."""
    layer = case.make()
    config = layer.config()
    json.dumps(config)
    rebuilt = build_layer(layer.kind, **config)
    assert rebuilt.config() == config, f"rebuilt config {rebuilt.config()} != {config}"
    shapes = case.input_shapes
    assert rebuilt.output_shape(shapes) == layer.output_shape(shapes), "rebuilt layer has another output shape"
    inputs = [Input(shape) for shape in shapes]
    net = Network(inputs, layer(*inputs))
    X, _ = _data(net, 2)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.jitbp")
        net.save(path)
        np.testing.assert_array_equal(load(path).predict(X), net.predict(X), err_msg="saved and loaded net differs")


def check_compiled_once(case):
    """Kernels are module-level, cached, and compile once per dtype: not per batch size or optimizer."""
    layer = case.make()
    dispatchers = {"forward_kernel": layer.forward_kernel, "backward_kernel": layer.backward_kernel}
    for attr, kernel in dispatchers.items():
        func = kernel.py_func
        assert func.__closure__ is None and "<locals>" not in func.__qualname__, (
            f"{attr} {func.__qualname__} is a closure or nested function: Numba cannot cache it")
        assert not isinstance(kernel._cache, NullCache), f"{attr} {func.__qualname__} needs @njit(cache=True)"

    def train(batch, opt):
        for dtype in (np.float64, np.float32):
            net, _ = _network(case, dtype)
            X, Y = _data(net, batch)
            net.learn(X, Y, optimizer=opt, epochs=1, batch_size=None)
            net.gradients(X, Y)
            net.predict(X)

    train(3, optim.SGD(lr=0.01))
    counts = {attr: len(kernel.signatures) for attr, kernel in dispatchers.items()}
    train(2, optim.Adam(lr=0.01))
    train(5, optim.RMSprop(lr=0.01))
    for attr, kernel in dispatchers.items():
        assert len(kernel.signatures) == counts[attr], (
            f"{attr} compiled again for another batch size or optimizer: signatures {kernel.signatures}")


def _cache_report(module, qualname, config, input_shapes):
    """Run a layer's kernels in both dtypes; ``{kernel: [cache hits, cache misses]}`` (child process side)."""
    cls = importlib.import_module(module)
    for part in qualname.split("."):
        cls = getattr(cls, part)
    layer = cls(**config)
    for dtype in (np.float64, np.float32):
        _kernel_pass(layer, input_shapes, 2, dtype)
    return {kernel.py_func.__qualname__: [sum(kernel.stats.cache_hits.values()),
                                          sum(kernel.stats.cache_misses.values())]
            for kernel in (layer.forward_kernel, layer.backward_kernel)}


def check_cached(case):
    """A second process loads the compiled kernels from Numba's on-disk cache instead of compiling."""
    layer = case.make()
    for dtype in (np.float64, np.float32):
        _kernel_pass(layer, case.input_shapes, 2, dtype)
    cls = type(layer)
    report = call("jitbp.testing._cache_report", cls.__module__, cls.__qualname__, layer.config(),
                  case.input_shapes, what=f"check_cached (second process) of layer {case.kind!r}")
    for name, (hits, misses) in report.items():
        assert misses == 0 and hits >= 2, (
            f"{name}: {misses} compilation(s) and {hits} cache hit(s) in a second process; "
            "expected every signature (float32 and float64) from the cache")


def _cuda_report(kind, args, kwargs, input_shapes):
    """``{name: [cuda result, cpu result]}`` for one layer's kernels run on the same arrays
    (child process side, under ``NUMBA_ENABLE_CUDASIM=1``), each called in its tier's form:
    forward, then backward with the ACCUMULATE rule (gradients) and, for the fused tiers,
    with SGD momentum (fused update). A gradient-tier launcher's grads are compared."""
    import pkgutil

    from .cuda.api import cuda

    case = LayerCase(kind, *args, input_shapes=input_shapes, **kwargs)
    layer = case.make()
    form = tiers.form(layer)
    launchers = pkgutil.resolve_name(layer.cuda_kernels)
    sgd = optim.SGD(lr=0.1, momentum=0.9)
    rules = [("gradient", kernels.ACCUMULATE, kernels.NO_HYPER)]
    if form in (tiers.CONTRACT1, tiers.FUSED) and layer.params:
        rules.append(("SGD momentum update", sgd.rule, sgd.hyper(1)))
    report = {}
    for label, rule, hyper in rules:
        cpu = _Kernels(layer, input_shapes, batch=2, dtype=np.float64)
        device = {name: tuple(cuda.to_device(a) for a in arrays)
                  for name, arrays in (("xs", cpu.xs), ("params", cpu.params), ("ws", cpu.ws),
                                       ("state", cpu.state))}
        ctx = None if form == tiers.CONTRACT1 else Context(True, cuda.to_device(cpu.settings), device["state"],
                                                           device["ws"], np.uint64(7), np.int64(1))
        y = cuda.to_device(np.full(cpu.y_shape, np.nan))
        tiers.forward(form, launchers.forward, xs=device["xs"], params=device["params"], y=y, ws=device["ws"],
                      ctx=ctx)
        dxs = tuple(cuda.to_device(np.full_like(x, np.nan)) for x in cpu.xs)
        states = tuple(cuda.to_device(np.zeros((1, p.size))) for p in cpu.params)
        grads = tuple(cuda.to_device(np.full_like(p, np.nan)) for p in cpu.params) if form == tiers.GRADIENT else ()
        tiers.backward(form, launchers.backward, xs=device["xs"], y=y, dy=cuda.to_device(cpu.dy), dxs=dxs,
                       need_dx=True, params=device["params"], rule=rule, hyper=cuda.to_device(hyper), states=states,
                       grads=grads, ws=device["ws"], ctx=ctx)
        y_cpu = cpu.forward()
        dxs_cpu, states_cpu = cpu.backward(y_cpu, rule, hyper)
        report["forward"] = [y.copy_to_host().tolist(), y_cpu.tolist()]
        for k, (dx, dx_cpu) in enumerate(zip(dxs, dxs_cpu)):
            report[f"input delta {k}"] = [dx.copy_to_host().tolist(), dx_cpu.tolist()]
        for name, s, s_cpu in zip(layer.state, device["state"], cpu.state):
            report[f"state {name}"] = [s.copy_to_host().tolist(), s_cpu.tolist()]
        if form == tiers.GRADIENT:
            for key, grad, grad_cpu in zip(layer.params, grads, states_cpu):
                report[f"grads of {key}"] = [grad.copy_to_host().tolist(), grad_cpu.tolist()]
            continue
        for key, state, state_cpu, p, p_cpu in zip(layer.params, states, states_cpu, device["params"], cpu.params):
            report[f"{label} state of {key}"] = [state.copy_to_host().ravel().tolist(), state_cpu.ravel().tolist()]
            report[f"{label}: {key} after"] = [p.copy_to_host().tolist(), p_cpu.tolist()]
    return report


def check_cuda(case):
    """The layer's CUDA kernels agree with its CPU kernels under Numba's CUDA simulator."""
    layer = case.make()
    if layer.cuda_kernels is None:
        raise unittest.SkipTest(f"layer {layer.kind!r} has no CUDA kernels (cuda_kernels is None)")
    # arguments travel pickled, so a case may hold arrays (LayerCase("scale", w=np.ones(3), ...))
    report = call("jitbp.testing._cuda_report", case.kind, case.args, case.kwargs, case.input_shapes,
                  what=f"check_cuda of layer {case.kind!r} on the CUDA simulator", env={"NUMBA_ENABLE_CUDASIM": "1"})
    for name, (gpu, cpu) in report.items():
        _assert_close(f"CUDA {name}", np.array(gpu), np.array(cpu), 1e-9)


CHECKS = (check_derivatives, check_fused_update, check_batch_of_one, check_backward_forward, check_fan_out,
          check_shared, check_prediction_mode, check_random_stream,
          check_dtypes, check_entry_point, check_config, check_compiled_once, check_cached, check_cuda)


def parametrize_with_checks(cases, expected_failures=None, checks=CHECKS):
    """``pytest.mark.parametrize("case, check", ...)`` over every check (or those in
    ``checks``) and case.

    ``expected_failures`` maps a case id to ``{check name: reason}``; those cases are
    marked ``xfail(strict=True)``, so an expected failure that passes is reported.
    """
    import pytest

    expected_failures = _by_case_id(cases, expected_failures or {})
    names = {check.__name__ for check in checks}
    params = []
    for case in cases:
        reasons = expected_failures.get(case.id, {})
        bad = set(reasons) - names
        if bad:
            raise KeyError(f"expected_failures for {case.id} names unknown check(s): {sorted(bad)}")
        for check in checks:
            marks = [pytest.mark.xfail(reason=reasons[check.__name__], strict=True)] if check.__name__ in reasons else []
            params.append(pytest.param(case, isolated(check) if case.isolate else check,
                                       id=f"{case.id}-{check.__name__}", marks=marks))
    return pytest.mark.parametrize("case, check", params)


def _by_case_id(cases, expected_failures):
    """``expected_failures`` keyed by case id; a key may also be a case's id as kits before
    keyword arguments wrote it (``scale(3)`` for ``scale(3,seed=0)``) when one case has it."""
    ids = {case.id: case.id for case in cases}
    legacy = {}
    for case in cases:
        legacy.setdefault(case.legacy_id, []).append(case.id)
    resolved = {}
    for key, reasons in expected_failures.items():
        matches = [ids[key]] if key in ids else legacy.get(key, [])
        if len(matches) != 1:
            why = "unknown" if not matches else f"ambiguous (it could be {', '.join(matches)})"
            raise KeyError(f"expected_failures names {why} case {key!r}; case ids: {sorted(ids)}")
        resolved[matches[0]] = reasons
    return resolved
