"""Whatever stops learn (Ctrl-C, an error inside a step, a bad output, divergence), every
layer and optimizer state are at one batch boundary, the exception says which, and the
model saves and loads."""
import os
import signal
import types

import numpy as np
import pytest

import jitbp
from jitbp.capture import runtime
from jitbp.engine import Engine

rng = np.random.default_rng(0)
X, Y = rng.normal(size=(8, 2)), rng.normal(size=(8, 1))


@pytest.fixture(params=["never", "always"])
def capture(request, monkeypatch):
    """Run each test on the interpreted engine and on the captured (compiled) epoch."""
    monkeypatch.setenv("JITBP_CAPTURE", request.param)
    return request.param


def mlp():
    return jitbp.Sequential(jitbp.layer("dense", 2, 3, seed=0), jitbp.layer("tanh"), jitbp.layer("dense", 3, 1, seed=1))


def params_of(net):
    return {key: value.copy() for key, value in net.params.items()}


def assert_same_params(net, expected):
    for key, value in net.params.items():
        assert value.tobytes() == expected[key].tobytes(), key


def steps(net, opt):
    """The set of optimizer step counts over every parameter (one value: all at one step)."""
    return {None if opt.state_of(value) is None else opt.state_of(value)[1] for value in net.params.values()}


def trained_on(batches, epochs=1):
    """A fresh mlp and Adam after ``epochs`` epochs and then ``batches`` batches of 2 (no shuffle)."""
    net, opt = mlp(), jitbp.Adam(lr=0.01)
    if epochs:
        net.learn(X, Y, optimizer=opt, epochs=epochs, batch_size=2, shuffle=False)
    if batches:
        net.learn(X[:2 * batches], Y[:2 * batches], optimizer=opt, batch_size=2, shuffle=False)
    return net, opt


def assert_saves_and_loads(net, opt, tmp_path):
    path = tmp_path / "model.jitbp"
    net.save(path, optimizer=opt)
    loaded = jitbp.load(path)
    assert_same_params(loaded, params_of(net))
    for key, value in loaded.params.items():
        saved, state = loaded.saved_optimizer.state_of(value), opt.state_of(net.params[key])
        assert (saved is None) == (state is None), key
        if state is not None:
            assert saved[1] == state[1] and saved[0].tobytes() == state[0].tobytes(), key


def on_call(layer, kind, number, action, monkeypatch):
    """Make ``layer``'s ``kind`` kernel run ``action()`` right after its ``number``-th call."""
    kernel, calls = getattr(layer, kind), []

    def wrapped(*args):
        kernel(*args)
        calls.append(1)
        if len(calls) == number:
            action()
    monkeypatch.setattr(layer, kind, wrapped, raising=False)


def ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_between_layer_kernels_finishes_the_batch(monkeypatch, tmp_path):
    """SIGINT after the output layer's backward of epoch 2, batch 3: the first layer is
    still updated for that batch, then learn stops there (interpreted engine)."""
    monkeypatch.setenv("JITBP_CAPTURE", "never")
    net, opt = mlp(), jitbp.Adam(lr=0.01)
    on_call(net.layers[-1], "backward_kernel", 4 + 3, ctrl_c, monkeypatch)
    with pytest.raises(KeyboardInterrupt) as info:
        net.learn(X, Y, optimizer=opt, epochs=3, batch_size=2, shuffle=False)
    assert steps(net, opt) == {7}
    reference, _ = trained_on(3)
    assert_same_params(net, params_of(reference))
    assert_saves_and_loads(net, opt, tmp_path)
    assert isinstance(info.value, jitbp.TrainingInterrupted)
    assert info.value.batches_applied == 7 and "after 7 batch(es)" in str(info.value)
    assert len(info.value.history) == 1


def test_ctrl_c_after_a_captured_epoch_returns_keeps_the_step_counts(monkeypatch, tmp_path):
    """SIGINT as the compiled epoch returns, before learn records its steps: the epoch
    counts, learn stops at its end."""
    monkeypatch.setenv("JITBP_CAPTURE", "always")
    reference, _ = trained_on(0, epochs=1)
    net, opt = mlp(), jitbp.Adam(lr=0.01)
    compiled = runtime.compiled

    def compiled_with_ctrl_c(*args):
        epoch = compiled(*args).epoch

        def interrupted_epoch(*epoch_args):
            result = epoch(*epoch_args)
            ctrl_c()
            return result
        return types.SimpleNamespace(epoch=interrupted_epoch)
    monkeypatch.setattr(runtime, "compiled", compiled_with_ctrl_c)
    with pytest.raises(KeyboardInterrupt) as info:
        net.learn(X, Y, optimizer=opt, epochs=3, batch_size=2, shuffle=False)
    assert steps(net, opt) == {4}
    monkeypatch.undo()
    np.testing.assert_allclose(net.params["dense_0.W"], reference.params["dense_0.W"], rtol=1e-12)
    assert_saves_and_loads(net, opt, tmp_path)
    assert isinstance(info.value, jitbp.TrainingInterrupted)
    assert info.value.batches_applied == 4 and len(info.value.history) == 1


def test_ctrl_c_in_the_last_batch_completes_learn_then_raises(monkeypatch):
    monkeypatch.setenv("JITBP_CAPTURE", "never")
    net, opt = mlp(), jitbp.SGD(lr=0.1)
    on_call(net.layers[-1], "backward_kernel", 8, ctrl_c, monkeypatch)
    with pytest.raises(KeyboardInterrupt) as info:
        net.learn(X, Y, optimizer=opt, epochs=2, batch_size=2, shuffle=False)
    assert steps(net, opt) == {8}
    assert info.value.batches_applied == 8 and len(info.value.history) == 2


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_an_exception_inside_a_step_rolls_back_to_the_checkpoint(monkeypatch, tmp_path, capture, error):
    """Raised between two layers' backward kernels (a SIGINT handler of the user's own, a
    plugin's bug): the checkpoint, here the start of the call, is restored."""
    net, opt = trained_on(0, epochs=1)
    before, state = params_of(net), {key: opt.state_of(v)[0].copy() for key, v in net.params.items()}

    def fail():
        raise error("stop")
    if capture == "always":  # the step counts are recorded after the compiled epoch returns
        monkeypatch.setattr(jitbp.optim.Optimizer, "advance", lambda *args: fail())
    else:
        on_call(net.layers[-1], "backward_kernel", 3, fail, monkeypatch)
    with pytest.raises(error) as info:
        net.learn(X, Y, optimizer=opt, epochs=2, batch_size=2, shuffle=False)
    assert steps(net, opt) == {4}
    assert_same_params(net, before)
    for key, value in net.params.items():
        assert opt.state_of(value)[0].tobytes() == state[key].tobytes(), key
    monkeypatch.undo()
    assert_saves_and_loads(net, opt, tmp_path)
    assert info.value.batches_applied == 0 and "0 batch(es)" in "".join(info.value.__notes__)


def test_an_output_outside_the_loss_domain_says_how_many_batches_were_applied(capture, tmp_path):
    """bce on an unsquashed output that leaves [0, 1] on batch 3: batches 1 and 2 stay applied."""
    def make():
        return jitbp.Sequential(jitbp.layer("dense", 1, 1, bias=False, W=[[1.0]])), jitbp.Adam(lr=0.01)
    data, targets = np.array([[0.5], [0.4], [2.0], [0.5]]), np.full((4, 1), 0.5)
    net, opt = make()
    with pytest.raises(ValueError, match="probabilities in") as info:
        net.learn(data, targets, "bce", opt, batch_size=1, shuffle=False)
    reference, ref_opt = make()
    reference.learn(data[:2], targets[:2], "bce", ref_opt, batch_size=1, shuffle=False)
    np.testing.assert_allclose(net.params["dense_0.W"], reference.params["dense_0.W"], rtol=1e-12)
    assert steps(net, opt) == {2}
    assert_saves_and_loads(net, opt, tmp_path)
    assert info.value.batches_applied == 2 and "2 batch(es)" in "".join(info.value.__notes__)


def test_divergence_on_the_first_captured_batch_saves_and_loads(capture, tmp_path):
    """The compiled epoch creates the optimizer's state before its first step; a state at
    step 0 saves and loads."""
    net, opt = mlp(), jitbp.Adam(lr=0.01)
    with pytest.raises(jitbp.DivergenceError) as info:
        net.learn(X[:2], np.full((2, 1), 1e300), "sse", opt, batch_size=1)
    assert steps(net, opt) <= {None, 0}
    assert_saves_and_loads(net, opt, tmp_path)
    assert info.value.batches_applied == 0


def test_sigint_handling_is_back_to_normal_after_learn(monkeypatch):
    monkeypatch.setenv("JITBP_CAPTURE", "never")
    net = mlp()
    net.learn(X, Y)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    on_call(net.layers[-1], "backward_kernel", 1, ctrl_c, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        net.learn(X, Y, batch_size=2)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(KeyboardInterrupt):
        ctrl_c()


def test_a_handler_of_the_users_own_is_left_alone(monkeypatch):
    monkeypatch.setenv("JITBP_CAPTURE", "never")
    seen = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
    try:
        net = mlp()
        on_call(net.layers[-1], "backward_kernel", 1, ctrl_c, monkeypatch)
        net.learn(X, Y, batch_size=2)
        assert seen == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, previous)


def test_engines_stop_before_the_next_batch_when_an_interrupt_is_pending():
    class Pending:
        pending = True
    net = mlp()
    before = params_of(net)
    opt = jitbp.SGD(lr=0.1)
    engine = net.engine
    assert isinstance(engine, Engine)
    result = engine.train_epoch([X], Y, None, 2, jitbp.losses.get_loss("mse"), engine.optimizer_updates(opt),
                                False, Pending())
    assert result == (0.0, 0, None)
    assert_same_params(net, before)
