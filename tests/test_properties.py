"""Property-based: random shapes, dtypes and values thrown at the public calls.

Each call either raises a clean ValueError/TypeError/KeyError (never a Numba typing
error or another exception) exactly when the input is invalid, leaving parameters and
optimizer state unchanged, or succeeds with the result a NumPy reference computes.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import jitbp

CLEAN = (ValueError, TypeError, KeyError)
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NUMERIC = [np.float64, np.float32, np.float16, np.int64, np.int8, np.uint8, np.bool_]
OTHER = [np.complex128, np.dtype("U3"), np.dtype("datetime64[s]"), np.dtype("timedelta64[s]")]


def arrays(dtypes, max_dims=3, width=None):
    """Arrays of random dtype and shape (0..3 dims, each 0..4; half of them (n, width) when
    ``width`` is given), values including NaN and inf."""
    shapes = hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=4)
    if width is not None:
        shapes = st.one_of(shapes, st.integers(0, 5).map(lambda n: (n, width)))
    return st.tuples(st.sampled_from(dtypes), shapes).flatmap(
        lambda spec: hnp.arrays(spec[0], spec[1], elements=_elements(np.dtype(spec[0]))))


def _elements(dtype):
    if dtype.kind == "f":
        width = 16 if dtype == np.float16 else 32 if dtype == np.float32 else 64
        return st.floats(allow_nan=True, allow_infinity=True, width=width)
    if dtype.kind == "U":
        return st.text(max_size=3)
    if dtype.kind in "mM":
        return st.integers(-1000, 1000).map(lambda v: np.array(v).astype(dtype)[()])
    return None


def network(dtype=np.float64):
    return jitbp.Sequential(jitbp.layer("dense", 3, 4, seed=0), jitbp.layer("tanh"),
                            jitbp.layer("dense", 4, 2, seed=1), dtype=dtype)


def reference_predict(net, X):
    params = {k: v.astype(np.float64) for k, v in net.params.items()}
    hidden = np.tanh(X @ params["dense_0.W"].T + params["dense_0.b"])
    return hidden @ params["dense_1.W"].T + params["dense_1.b"]


def valid_features(X, width=3):
    return (X.dtype.kind in "biuf" and X.ndim == 2 and X.shape[0] > 0 and X.shape[1] == width
            and bool(np.all(np.isfinite(X.astype(np.float64)))))


class Snapshot:
    """Parameters and optimizer state, to prove a refused call changed nothing."""

    def __init__(self, net, optimizer=None):
        self.net, self.optimizer = net, optimizer
        self.params = {k: v.tobytes() for k, v in net.params.items()}
        self.states = self._states()

    def _states(self):
        if self.optimizer is None:
            return None
        return {k: None if self.optimizer.state_of(v) is None
                else (self.optimizer.state_of(v)[0].tobytes(), self.optimizer.state_of(v)[1])
                for k, v in self.net.params.items()}

    def unchanged(self):
        return self.params == {k: v.tobytes() for k, v in self.net.params.items()} and self.states == self._states()


def refused(call, snapshot):
    """Whether ``call`` raised a clean exception; asserts nothing changed if it did."""
    try:
        call()
    except CLEAN as exc:
        event(f"refused: {type(exc).__name__}")
        assert snapshot.unchanged()
        return True
    event("accepted")
    return False


@SETTINGS
@given(X=arrays(NUMERIC + OTHER, width=3), dtype=st.sampled_from([np.float32, np.float64]))
def test_predict_refuses_exactly_the_invalid_inputs(X, dtype):
    net = network(dtype)
    snapshot = Snapshot(net)
    with np.errstate(over="ignore"):
        valid = valid_features(X) and bool(np.all(np.isfinite(X.astype(dtype))))
    if refused(lambda: net.predict(X), snapshot):
        assert not valid
        return
    assert valid
    result = net.predict(X)
    assert result.shape == (len(X), 2) and result.dtype == dtype
    tolerance = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(result, reference_predict(net, X.astype(np.float64)), rtol=tolerance, atol=tolerance)


@st.composite
def pairs(draw):
    """(X, Y): independent random arrays, or Y shaped to match X's length."""
    X = draw(arrays([np.float64, np.int64, np.bool_], max_dims=2, width=3))
    if X.ndim and draw(st.booleans()):
        Y = draw(hnp.arrays(st.sampled_from([np.float64, np.int8]), (len(X), 2)))
    else:
        Y = draw(arrays([np.float64, np.int8], max_dims=2, width=2))
    return X, Y


@SETTINGS
@given(pair=pairs(), loss=st.sampled_from(["mse", "sse", "mae", "half_sse", "nope"]))
def test_loss_refuses_exactly_the_invalid_pairs(pair, loss):
    X, Y = pair
    net = network()
    snapshot = Snapshot(net)
    valid = valid_features(X) and valid_features(Y, width=2) and len(X) == len(Y) and loss != "nope"
    value = []
    if refused(lambda: value.append(net.loss(X, Y, loss=loss)), snapshot):
        assert not valid
        return
    assert valid
    error = reference_predict(net, X.astype(np.float64)) - Y
    if loss == "mse":
        np.testing.assert_allclose(value[0], np.mean(error ** 2), rtol=1e-12)
    elif loss == "sse":
        np.testing.assert_allclose(value[0], np.sum(error ** 2), rtol=1e-12)
    elif loss == "half_sse":
        np.testing.assert_allclose(value[0], 0.5 * np.sum(error ** 2), rtol=1e-12)
    else:
        np.testing.assert_allclose(value[0], np.mean(np.abs(error)), rtol=1e-12)


@SETTINGS
@given(labels=hnp.arrays(st.sampled_from([np.int64, np.float64, np.int8]), st.integers(1, 6),
                         elements=st.integers(-2, 3)),
       extra=st.sampled_from([0, 0, 0, 1]))
def test_learn_refuses_labels_out_of_range_and_trains_otherwise(labels, extra):
    net, opt = network(), jitbp.Adam(1e-2)
    net.learn(np.ones((2, 3)), [0, 1], loss="cross_entropy", optimizer=opt)
    snapshot = Snapshot(net, opt)
    X = np.linspace(-1, 1, 3 * (len(labels) + extra)).reshape(-1, 3)
    valid = extra == 0 and bool(np.all((labels >= 0) & (labels < 2)))
    if refused(lambda: net.learn(X, labels, loss="cross_entropy", optimizer=opt, epochs=2, batch_size=2), snapshot):
        assert not valid
        return
    assert valid and not snapshot.unchanged()
    assert all(opt.state_of(v)[1] == 1 + 2 * -(-len(labels) // 2) for v in net.params.values())


ARGUMENT = st.one_of(st.none(), st.booleans(), st.integers(-3, 6), st.floats(-2, 6), st.just(float("nan")),
                     st.text(max_size=2))


def _count(value, minimum, allow_none=False):
    if value is None:
        return allow_none
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def mostly(valid):
    """``valid`` three times in four, any ``ARGUMENT`` otherwise."""
    return st.sampled_from([True, True, True, False]).flatmap(lambda ok: valid if ok else ARGUMENT)


@SETTINGS
@given(batch_size=mostly(st.one_of(st.none(), st.integers(1, 6))), epochs=mostly(st.integers(0, 3)),
       seed=mostly(st.one_of(st.none(), st.integers(0, 9))), shuffle=mostly(st.booleans()),
       tol=mostly(st.one_of(st.none(), st.floats(0, 1))))
def test_learn_refuses_exactly_the_invalid_arguments(batch_size, epochs, seed, shuffle, tol):
    net, opt = network(), jitbp.SGD(0.1, momentum=0.5)
    net.learn(np.ones((2, 3)), np.zeros((2, 2)), optimizer=opt)
    snapshot = Snapshot(net, opt)
    tol_ok = tol is None or (not isinstance(tol, (bool, str)) and tol == tol and tol >= 0)
    valid = (_count(batch_size, 1, allow_none=True) and _count(epochs, 0) and _count(seed, 0, allow_none=True)
             and isinstance(shuffle, bool) and tol_ok)
    X, Y = np.linspace(-1, 1, 15).reshape(5, 3), np.linspace(0, 1, 10).reshape(5, 2)
    call = lambda: net.learn(X, Y, optimizer=opt, batch_size=batch_size, epochs=epochs, seed=seed,  # noqa: E731
                             shuffle=shuffle, tol=tol)
    if refused(call, snapshot):
        assert not valid
        return
    assert valid
    assert snapshot.unchanged() == (epochs == 0)


HYPER = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2, 2), st.none(), st.text(max_size=1))


def _in(value, low, high, high_open=False):
    if isinstance(value, (bool, str)) or value is None:
        return False
    return low <= value and (value < high if high_open else value <= high) and np.isfinite(value)


@SETTINGS
@given(kind=st.sampled_from(["SGD", "Adam", "RMSprop", "Adagrad"]), lr=HYPER, second=HYPER, eps=HYPER)
def test_optimizers_refuse_exactly_the_invalid_hyper_parameters(kind, lr, second, eps):
    build = {
        "SGD": (lambda: jitbp.SGD(lr, momentum=second, weight_decay=eps), (0, np.inf, False), (0, np.inf, False)),
        "Adam": (lambda: jitbp.Adam(lr, betas=(0.9, second), eps=eps), (0, 1, True), (0, np.inf, False)),
        "RMSprop": (lambda: jitbp.RMSprop(lr, alpha=second, eps=eps), (0, 1, False), (0, np.inf, False)),
        "Adagrad": (lambda: jitbp.Adagrad(lr, lr_decay=second, eps=eps), (0, np.inf, False), (0, np.inf, False)),
    }
    make, second_range, eps_range = build[kind]
    valid = _in(lr, 0, np.inf) and _in(second, *second_range) and _in(eps, *eps_range)
    try:
        optimizer = make()
    except CLEAN:
        assert not valid
        return
    assert valid and optimizer.lr == lr


@SETTINGS
@given(n_in=ARGUMENT, n_out=ARGUMENT, W=arrays([np.float64, np.int64, np.dtype("U3")], max_dims=2))
def test_dense_refuses_exactly_the_invalid_arguments(n_in, n_out, W):
    assume(W.size < 20)
    sizes_ok = _count(n_in, 1) and _count(n_out, 1)
    valid = (sizes_ok and W.dtype.kind in "fi" and W.shape == (n_out, n_in)
             and bool(np.all(np.isfinite(W.astype(np.float64)))))
    try:
        layer = jitbp.layer("dense", n_in, n_out, W=W)
    except CLEAN:
        assert not valid
        return
    assert valid
    np.testing.assert_array_equal(layer.params["W"], W.astype(np.float64))


@pytest.mark.parametrize("name", ["dense", "DENSE", "Dense", "", "dense ", "sigmoid2"])
def test_unknown_layer_names_list_the_known_ones(name):
    if name == "dense":
        assert jitbp.layer(name, 1, 1).kind == "dense"
        return
    with pytest.raises(KeyError) as info:
        jitbp.layer(name, 1, 1)
    for known in ("dense", "sigmoid", "tanh", "relu", "softmax", "add", "concat"):
        assert known in str(info.value)
