"""Bad input at every public call: a clear ValueError/TypeError/KeyError subclass, before any
kernel runs, with parameters and optimizer state unchanged."""
import numpy as np
import pytest

import jitbp
from guards import guard, mlp, tripwire
from jitbp.errors import ShapeError, UnknownNameError

rng = np.random.default_rng(0)
X = rng.normal(size=(5, 3))
Y = rng.normal(size=(5, 2))
LABELS = np.array([0, 1, 1, 0, 1])


@pytest.fixture
def guarded(monkeypatch):
    """A trained net and its optimizer (state present), whose engine refuses to run."""
    net, opt = mlp(), jitbp.SGD(0.1, momentum=0.9)
    net.learn(X, Y, optimizer=opt, epochs=1)
    params = guard(net, monkeypatch)
    states = {k: (opt.state_of(v)[0].copy(), opt.state_of(v)[1]) for k, v in net.params.items()}
    yield net, opt
    for key, value in net.params.items():
        assert value.tobytes() == params[key].tobytes(), f"{key} changed"
        slots, step = opt.state_of(value)
        assert step == states[key][1] and slots.tobytes() == states[key][0].tobytes(), f"state of {key} changed"


def learn(**kwargs):
    def call(net, opt):
        args = dict(X=X, Y=Y, optimizer=opt, epochs=2, batch_size=2)
        args.update(kwargs)
        return net.learn(args.pop("X"), args.pop("Y"), **args)
    return call


def masked():
    return np.ma.masked_array(X, mask=X > 1)


BAD_DATA = {
    # name: (X, Y, loss, exception, message)
    "strings": (np.array([["a"] * 3] * 5), Y, "mse", TypeError, "X must be real numbers"),
    "objects": ([[1, None, 2]] * 5, Y, "mse", TypeError, "dtype object"),
    "complex": (X + 1j, Y, "mse", TypeError, "complex128"),
    "datetimes": (np.zeros((5, 3), "datetime64[s]"), Y, "mse", TypeError, "datetime64"),
    "timedeltas": (np.zeros((5, 3), "timedelta64[s]"), Y, "mse", TypeError, "timedelta64"),
    "structured": (np.zeros((5, 3), [("a", "f8")]), Y, "mse", TypeError, "must be real numbers"),
    "ragged": ([[1, 2, 3], [1, 2]] * 2 + [[1, 2, 3]], Y, "mse", ShapeError, "ragged"),
    "None": (None, Y, "mse", TypeError, "X must be real numbers"),
    "scalar": (1.0, Y, "mse", ShapeError, r"X must have shape \(n_samples, 3\), got \(\)"),
    "too few features": (X[:, :2], Y, "mse", ShapeError, r"got \(5, 2\)"),
    "3-d": (X[None], Y, "mse", ShapeError, r"got \(1, 5, 3\)"),
    "empty": (np.empty((0, 3)), Y[:0], "mse", ValueError, "X is empty"),
    "NaN in X": (np.where(X > 1, np.nan, X), Y, "mse", ValueError, r"X contains \d+ NaN or inf"),
    "inf in X": (np.where(X > 1, -np.inf, X), Y, "mse", ValueError, "X contains"),
    "masked X": (masked(), Y, "mse", ValueError, "masked values"),
    "wrong Y length": (X, Y[:3], "mse", ShapeError, "X has 5 samples but Y has 3"),
    "wrong Y width": (X, Y[:, :1], "mse", ShapeError, r"Y must have shape \(n_samples, 2\)"),
    "NaN in Y": (X, Y * np.nan, "mse", ValueError, "Y contains 10 NaN"),
    "string Y": (X, Y.astype(str), "mse", TypeError, "Y must be real numbers"),
    "bce targets outside [0, 1]": (X, Y, "bce", ValueError, "probabilities"),
    "labels out of range": (X, np.array([0, 1, 2, 0, 1]), "cross_entropy", ValueError, r"labels must be in \[0, 2\)"),
    "negative labels": (X, np.array([0, -1, 1, 0, 1]), "cross_entropy", ValueError, r"\[-1, 1\]"),
    "fractional labels": (X, np.array([0, 1, 0.5, 0, 1]), "cross_entropy", ValueError, "whole numbers"),
    "huge labels": (X, np.array([0, 1, 1e300, 0, 1]), "cross_entropy", ValueError, "labels must be in"),
    "one-hot labels": (X, np.eye(2)[LABELS], "cross_entropy", ShapeError, "integer class labels"),
    "NaN labels": (X, np.array([0, 1, np.nan, 0, 1]), "cross_entropy", ValueError, "NaN"),
    "wrong label count": (X, LABELS[:4], "cross_entropy", ShapeError, "Y has 4"),
}

BAD_DATA_CALLS = {
    "learn": lambda net, opt, x, y, loss: net.learn(x, y, loss=loss, optimizer=opt),
    "loss": lambda net, opt, x, y, loss: net.loss(x, y, loss=loss),
    "gradients": lambda net, opt, x, y, loss: net.gradients(x, y, loss=loss),
}


@pytest.mark.parametrize("call", list(BAD_DATA_CALLS))
@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_data_is_refused(guarded, call, case):
    x, y, loss, exc, match = BAD_DATA[case]
    with pytest.raises(exc, match=match):
        BAD_DATA_CALLS[call](*guarded, x, y, loss)


@pytest.mark.parametrize("case", [c for c in BAD_DATA if BAD_DATA[c][0] is not X])
def test_bad_features_are_refused_by_predict(guarded, case):
    x, _, _, exc, match = BAD_DATA[case]
    with pytest.raises(exc, match=match):
        guarded[0].predict(x)


def test_values_beyond_float32_are_refused_not_turned_into_inf(monkeypatch):
    net = jitbp.Sequential(jitbp.layer("dense", 3, 2, seed=0), dtype=np.float32)
    monkeypatch.setattr(net.engine, "forward", tripwire)
    with pytest.raises(ValueError, match="X converted to float32 contains 2 NaN or inf"):
        net.predict(np.array([[1e39, 0, 0], [0, 0, -1e300]]))


BAD_ARGUMENTS = {
    "batch_size 0": (learn(batch_size=0), ValueError, "batch_size must be >= 1, got 0"),
    "batch_size -3": (learn(batch_size=-3), ValueError, "batch_size must be >= 1"),
    "batch_size 2.0": (learn(batch_size=2.0), TypeError, "batch_size must be an integer"),
    "batch_size True": (learn(batch_size=True), TypeError, "batch_size must be an integer"),
    "epochs -1": (learn(epochs=-1), ValueError, "epochs must be >= 0"),
    "epochs 1.5": (learn(epochs=1.5), TypeError, "epochs must be an integer"),
    "epochs '3'": (learn(epochs="3"), TypeError, "epochs must be an integer"),
    "patience 0": (learn(patience=0, tol=0.1), ValueError, "patience must be >= 1"),
    "tol -1": (learn(tol=-1.0), ValueError, "tol must be a finite number >= 0"),
    "tol nan": (learn(tol=float("nan")), ValueError, "tol must be a finite number"),
    "tol True": (learn(tol=True), TypeError, "tol must be a number"),
    "seed -1": (learn(seed=-1), ValueError, "seed must be >= 0"),
    "seed 'a'": (learn(seed="a"), TypeError, "seed must be an integer"),
    "seed 1.5": (learn(seed=1.5), TypeError, "seed must be an integer"),
    "shuffle 'no'": (learn(shuffle="no"), TypeError, "shuffle must be True or False"),
    "unknown loss": (learn(loss="msee"), UnknownNameError, "unknown loss 'msee'; known losses: sse, half_sse, mse"),
    "loss None": (learn(loss=None), TypeError, "loss must be a name"),
    "optimizer by name": (learn(optimizer="sgd"), TypeError, "optimizer must be a jitbp optimizer"),
    "optimizer class": (learn(optimizer=jitbp.Adam), TypeError, "optimizer must be a jitbp optimizer"),
    "X not a list for 1 input": (learn(X=[X, X]), ShapeError, "X must have shape"),
}


@pytest.mark.parametrize("case", list(BAD_ARGUMENTS))
def test_bad_learn_arguments_are_refused(guarded, case):
    call, exc, match = BAD_ARGUMENTS[case]
    with pytest.raises(exc, match=match):
        call(*guarded)


def two_input_net():
    a, b = jitbp.Input(2), jitbp.Input(3)
    return jitbp.Network([a, b], jitbp.layer("concat")(a, b))


@pytest.mark.parametrize("x, match", [
    (np.ones((4, 5)), "this network has 2 inputs"),
    ([np.ones((4, 2))], "this network has 2 inputs"),
    ([np.ones((4, 2)), np.ones((3, 3))], r"different numbers of samples: \[3, 4\]"),
    ([np.ones((4, 3)), np.ones((4, 2))], r"X\[0\] must have shape \(n_samples, 2\)"),
    ([np.ones((4, 2)), np.full((4, 3), np.nan)], r"X\[1\] contains 12 NaN"),
])
def test_multi_input_networks_check_each_array(x, match):
    with pytest.raises(ValueError, match=match):
        two_input_net().predict(x)


def test_accepted_conversions_give_the_same_numbers_as_float64():
    net = mlp()
    expected = net.predict(X.astype(np.float64))
    integers = np.arange(15).reshape(5, 3)
    np.testing.assert_array_equal(net.predict(integers), net.predict(integers.astype(np.float64)))
    np.testing.assert_array_equal(net.predict(X > 0), net.predict((X > 0).astype(np.float64)))
    np.testing.assert_array_equal(net.predict(np.asfortranarray(X)), expected)
    wide = np.zeros((5, 6))
    wide[:, ::2] = X
    np.testing.assert_array_equal(net.predict(wide[:, ::2]), expected)  # strided view
    np.testing.assert_array_equal(net.predict(X.tolist()), expected)
    readonly = X.copy()
    readonly.flags.writeable = False
    np.testing.assert_array_equal(net.predict(readonly), expected)
    np.testing.assert_array_equal(net.predict(np.ma.masked_array(X)), expected)  # nothing masked


def test_accepted_labels_and_targets():
    net = mlp()
    as_float = net.loss(X, LABELS.astype(float), loss="cross_entropy")
    assert as_float == net.loss(X, LABELS.astype(np.uint8), loss="cross_entropy")
    assert as_float == net.loss(X, LABELS.tolist(), loss="cross_entropy")
    assert net.loss(X, Y.astype(np.float32), loss="mse") == net.loss(X, Y.astype(np.float32).astype(float))


def test_inputs_are_not_modified_by_training():
    net, x, y = mlp(), X.copy(), Y.copy()
    net.learn(x, y, optimizer=jitbp.SGD(0.1), epochs=3, batch_size=2)
    assert x.tobytes() == X.tobytes() and y.tobytes() == Y.tobytes()


@pytest.mark.parametrize("make, exc, match", [
    (lambda: jitbp.SGD(-0.1), ValueError, "lr must be in"),
    (lambda: jitbp.SGD(float("nan")), ValueError, "lr must be in"),
    (lambda: jitbp.SGD(float("inf")), ValueError, "lr must be in"),
    (lambda: jitbp.SGD("0.1"), TypeError, "lr must be a number"),
    (lambda: jitbp.SGD(True), TypeError, "lr must be a number"),
    (lambda: jitbp.SGD(0.1, momentum=-0.5), ValueError, "momentum must be in"),
    (lambda: jitbp.SGD(0.1, dampening=2.0), ValueError, "dampening must be in"),
    (lambda: jitbp.SGD(0.1, nesterov=True), ValueError, "nesterov needs momentum"),
    (lambda: jitbp.SGD(0.1, momentum=0.9, nesterov="no"), TypeError, "nesterov must be True or False"),
    (lambda: jitbp.SGD(0.1, weight_decay=-1), ValueError, "weight_decay must be in"),
    (lambda: jitbp.Adam(lr=-1e-3), ValueError, "lr must be in"),
    (lambda: jitbp.Adam(betas=(0.9, 1.0)), ValueError, r"betas\[1\] must be in \[0.0, 1.0\)"),
    (lambda: jitbp.Adam(betas=(-0.1, 0.9)), ValueError, r"betas\[0\]"),
    (lambda: jitbp.Adam(betas=0.9), TypeError, "betas must be a pair"),
    (lambda: jitbp.Adam(betas=(0.9, 0.99, 0.999)), TypeError, "betas must be a pair"),
    (lambda: jitbp.Adam(eps=-1e-8), ValueError, "eps must be in"),
    (lambda: jitbp.RMSprop(alpha=1.5), ValueError, "alpha must be in"),
    (lambda: jitbp.RMSprop(eps=float("nan")), ValueError, "eps must be in"),
    (lambda: jitbp.Adagrad(lr_decay=-1), ValueError, "lr_decay must be in"),
    (lambda: jitbp.Adagrad(lr=None), TypeError, "lr must be a number"),
])
def test_bad_optimizer_hyper_parameters_are_refused(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize("make, exc, match", [
    (lambda: jitbp.layer("dence", 2, 2), UnknownNameError, "unknown layer 'dence'; known layers: .*dense"),
    (lambda: jitbp.layer(None), TypeError, "layer name must be a string"),
    (lambda: jitbp.layer("dense", 0, 2), ValueError, "n_in must be a positive integer"),
    (lambda: jitbp.layer("dense", 2, -1), ValueError, "n_out must be a positive integer"),
    (lambda: jitbp.layer("dense", 2.0, 2), TypeError, "n_in must be a positive integer"),
    (lambda: jitbp.layer("dense", 2, 2, W=np.zeros((3, 2))), ShapeError, r"W must have shape \(2, 2\)"),
    (lambda: jitbp.layer("dense", 2, 2, W=[[np.nan, 0], [0, 0]]), ValueError, "W contains NaN or inf"),
    (lambda: jitbp.layer("dense", 2, 2, W=[["a", "b"], ["c", "d"]]), TypeError, "W must be numeric"),
    (lambda: jitbp.layer("dense", 2, 2, b=[1, 2, 3]), ShapeError, r"b must have shape \(2,\)"),
    (lambda: jitbp.layer("dense", 2, 2, bias=False, b=[1, 2]), ValueError, "b given but bias=False"),
    (lambda: jitbp.layer("dense", 2, 2, foo=1), TypeError, "layer 'dense'.*foo"),
    (lambda: jitbp.layer("dense", 2, 2, name="a.b"), ValueError, "without '.'"),
    (lambda: jitbp.layer("sigmoid", 3), TypeError, "layer 'sigmoid'"),
    (lambda: jitbp.Input(0), ValueError, "Input shape must be positive"),
    (lambda: jitbp.Input(2.5), TypeError, "Input shape must be an int"),
    (lambda: jitbp.Input(True), TypeError, "Input shape must be an int"),
    (lambda: jitbp.Input(None), TypeError, "Input shape must be an int"),
    (lambda: jitbp.Input("12"), TypeError, "Input shape must be an int"),  # was read as (1, 2)
    (lambda: jitbp.Input((2.7,)), TypeError, "Input shape must be an int"),  # was truncated to (2,)
    (lambda: jitbp.Sequential(), TypeError, "Sequential takes one or more jitbp layers"),
    (lambda: jitbp.Sequential("dense"), TypeError, "Sequential takes one or more jitbp layers"),
    (lambda: jitbp.Sequential(jitbp.layer("tanh")), ShapeError, "fixes the input width"),
    (lambda: jitbp.Sequential(jitbp.layer("dense", 3, 4), jitbp.layer("dense", 5, 2)), ShapeError,
     r"expects per-sample input shape \(5,\), got \(4,\)"),
    (lambda: jitbp.Sequential(jitbp.layer("dense", 3, 4), dtype=int), TypeError, "float32 or float64"),
    (lambda: jitbp.Sequential(jitbp.layer("dense", 3, 4), dtype=np.float16), TypeError, "float32 or float64"),
    (lambda: jitbp.Sequential(jitbp.layer("dense", 3, 4), dtype="blah"), TypeError, "float32 or float64"),
    (lambda: jitbp.Sequential(jitbp.layer("dense", 3, 4), device="tpu"), ValueError, "unknown device 'tpu'"),
    (lambda: jitbp.Network(jitbp.Input(3), jitbp.Input(3)), TypeError, "output must be the result of a layer"),
    (lambda: jitbp.Network("x", jitbp.layer("tanh")(jitbp.Input(3))), TypeError, "inputs must be jitbp.Input"),
    (lambda: jitbp.layer("add")(jitbp.Input(2), jitbp.Input(3)), ShapeError, "add needs inputs of one shape"),
    (lambda: jitbp.layer("tanh")(np.ones(3)), TypeError, "must be called on graph nodes"),
    (lambda: jitbp.layer("tanh")(jitbp.Input(2), jitbp.Input(2)), TypeError, "takes 1 input"),
])
def test_bad_construction_is_refused(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_network_refuses_an_output_that_needs_an_unlisted_input():
    a, b = jitbp.Input(3), jitbp.Input(3)
    with pytest.raises(ValueError, match="depends on 1 Input"):
        jitbp.Network(a, jitbp.layer("add")(a, b))


def test_two_layers_with_one_name_are_refused():
    with pytest.raises(ValueError, match="two layers are named 'x'"):
        jitbp.Sequential(jitbp.layer("dense", 2, 2, name="x"), jitbp.layer("dense", 2, 2, name="x"))


def test_error_classes_are_the_builtins_callers_expect():
    assert issubclass(ShapeError, ValueError)
    assert issubclass(UnknownNameError, KeyError)
    assert issubclass(jitbp.ModelFileError, ValueError)
    assert issubclass(jitbp.DivergenceError, FloatingPointError)
    assert str(UnknownNameError("unknown loss 'x'")) == "unknown loss 'x'"  # no KeyError quotes
