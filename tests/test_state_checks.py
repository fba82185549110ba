"""State that changed after construction (read-only parameters, optimizer attributes) is
refused with a clear error before any kernel runs, leaving the model unchanged."""
import numpy as np
import pytest

import jitbp
from guards import guard, mlp
from jitbp.layers.dense import Dense

rng = np.random.default_rng(0)
X, Y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))


@pytest.fixture
def guarded(monkeypatch):
    """A trained net and its optimizer, whose engine refuses to run; unchanged afterwards."""
    monkeypatch.setenv("JITBP_CAPTURE", "never")
    net, opt = mlp(), jitbp.SGD(0.1, momentum=0.9)
    net.learn(X, Y, optimizer=opt)
    params = guard(net, monkeypatch)
    yield net, opt
    for key, value in net.params.items():
        assert value.tobytes() == params[key].tobytes(), f"{key} changed"
        assert opt.state_of(value)[1] == 1, f"state of {key} changed"


def test_a_parameter_made_read_only_is_refused_before_training(guarded):
    net, opt = guarded
    net.params["dense_1.b"].flags.writeable = False
    with pytest.raises(ValueError, match="parameter dense_1.b is a read-only array"):
        net.learn(X, Y, optimizer=opt)


def test_a_read_only_view_given_as_a_parameter_is_refused_before_any_kernel(monkeypatch):
    """The layer keeps the caller's float64 view as it is; the first layers unwound would
    have been updated before a typing error on this one."""
    monkeypatch.setenv("JITBP_CAPTURE", "never")
    frozen = Dense(3, 4, seed=0)
    weights = np.ones((4, 3))
    view = weights.view()
    view.flags.writeable = False
    frozen.params["W"] = view
    net = jitbp.Sequential(frozen, jitbp.layer("tanh"), jitbp.layer("dense", 4, 2, seed=1))
    before = {k: v.copy() for k, v in net.params.items()}
    with pytest.raises(ValueError, match="parameter dense_0.W is a read-only array"):
        net.learn(X, Y)
    for key, value in net.params.items():
        assert value.tobytes() == before[key].tobytes(), key
    assert net.predict(X).shape == (5, 2)  # reading a read-only parameter is fine


@pytest.mark.parametrize("make, name, value, error, message", [
    (lambda: jitbp.SGD(0.1), "lr", -1, ValueError, r"lr must be in \[0.0, inf\], got -1.0"),
    (lambda: jitbp.SGD(0.1), "lr", "0.1", TypeError, "lr must be a number, got '0.1'"),
    (lambda: jitbp.SGD(0.1), "lr", float("nan"), ValueError, "lr must be in"),
    (lambda: jitbp.SGD(0.1), "lr", True, TypeError, "lr must be a number"),
    (lambda: jitbp.SGD(0.1, momentum=0.9), "momentum", -0.5, ValueError, "momentum must be in"),
    (lambda: jitbp.SGD(0.1, momentum=0.9), "dampening", 2.0, ValueError, "dampening must be in"),
    (lambda: jitbp.SGD(0.1, momentum=0.9), "nesterov", "yes", TypeError, "nesterov must be True or False"),
    (lambda: jitbp.SGD(0.1), "weight_decay", None, TypeError, "weight_decay must be a number"),
    (lambda: jitbp.Adam(), "betas", (0.9, 1.0), ValueError, r"betas\[1\] must be in"),
    (lambda: jitbp.Adam(), "betas", 0.9, TypeError, "betas must be a pair"),
    (lambda: jitbp.Adam(), "eps", "1e-8", TypeError, "eps must be a number"),
    (lambda: jitbp.RMSprop(), "alpha", 1.5, ValueError, "alpha must be in"),
    (lambda: jitbp.Adagrad(), "lr_decay", -1.0, ValueError, "lr_decay must be in"),
])
def test_optimizer_attributes_are_checked_when_set(make, name, value, error, message):
    opt = make()
    before = opt.settings()
    with pytest.raises(error, match=message):
        setattr(opt, name, value)
    assert opt.settings() == before


def test_a_valid_assignment_is_used_by_the_next_learn():
    opt = jitbp.SGD(0.1)
    opt.lr = np.float32(0.5)
    assert type(opt.lr) is float and opt.lr == 0.5 and opt.base_hyper()[0] == 0.5


@pytest.mark.parametrize("change, message", [
    (lambda opt: setattr(opt, "nesterov", True), "nesterov needs momentum > 0"),
    (lambda opt: setattr(opt, "momentum", 0.0), "momentum was switched off"),
])
def test_combinations_changed_after_construction_are_refused_at_learn(guarded, change, message):
    net, opt = guarded
    opt.dampening = 0.5
    change(opt)
    with pytest.raises(ValueError, match=message):
        net.learn(X, Y, optimizer=opt)


def test_momentum_switched_on_after_construction_is_refused(monkeypatch):
    """The state arrays of an SGD built without momentum have no buffer to write."""
    monkeypatch.setenv("JITBP_CAPTURE", "never")
    net, opt = mlp(), jitbp.SGD(0.1)
    opt.momentum = 0.9
    with pytest.raises(ValueError, match="momentum was switched on after this SGD was created"):
        net.learn(X, Y, optimizer=opt)



def test_an_unset_hyper_parameter_is_an_attribute_error():
    """hasattr/getattr with a default work on an optimizer whose __init__ did not run."""
    bare = jitbp.SGD.__new__(jitbp.SGD)
    assert not hasattr(bare, "lr") and getattr(bare, "lr", None) is None


def test_notes_are_added_as_python_3_11_adds_them():
    from jitbp.interrupts import _add_note

    error = ValueError("x")
    error.add_note("first")
    _add_note(error, "second")
    assert error.__notes__ == ["first", "second"]
