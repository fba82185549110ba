"""Divergence: a non-finite loss or weight stops learn with the last finite params and optimizer state."""
import numpy as np
import pytest

import jitbp
from jitbp import divergence, training


@pytest.fixture(params=["never", "always"])
def capture(request, monkeypatch):
    """Run each test on the interpreted engine and on the captured (compiled) epoch."""
    monkeypatch.setenv("JITBP_CAPTURE", request.param)
    return request.param


def hidden_inf_net():
    """One step sends the first weight to -inf (its gradient is x = 1e308 times a finite
    delta); the sigmoid then saturates at 0, so the loss stays finite and the inf stays."""
    return jitbp.Sequential(jitbp.layer("dense", 1, 1, bias=False, W=[[1e-308]]), jitbp.layer("sigmoid"),
                            jitbp.layer("dense", 1, 1, W=[[10.0]], b=[0.0]))


HIDDEN_X, HIDDEN_Y = np.array([[1e308]]), np.array([[-1.0]])


def copies(net):
    return {key: value.copy() for key, value in net.params.items()}


def states(net, optimizer):
    return {key: None if optimizer.state_of(v) is None else (optimizer.state_of(v)[0].copy(), optimizer.state_of(v)[1])
            for key, v in net.params.items()}


def assert_same_params(net, expected):
    for key, value in net.params.items():
        assert value.tobytes() == expected[key].tobytes(), key


def assert_same_states(net, optimizer, expected):
    for key, value in net.params.items():
        state = optimizer.state_of(value)
        if expected[key] is None:
            assert state is None, key
        else:
            assert state[1] == expected[key][1] and state[0].tobytes() == expected[key][0].tobytes(), key


class NoCheckpoint:
    """Stands in for the checkpoint to show what learn would do without it."""

    due = -1

    def __init__(self, *args):
        pass

    def verify(self, *args, **kwargs):
        pass


def test_the_scenario_really_hides_an_inf_weight_behind_a_finite_loss(monkeypatch, capture):
    monkeypatch.setattr(training, "Checkpoint", NoCheckpoint)
    net = hidden_inf_net()
    history = net.learn(HIDDEN_X, HIDDEN_Y, optimizer=jitbp.SGD(1.0, momentum=0.5), epochs=3, batch_size=1)
    assert np.all(np.isfinite(history))
    assert np.isneginf(net.params["dense_0.W"][0, 0])


def test_inf_weight_with_finite_loss_is_rolled_back(capture):
    net, opt = hidden_inf_net(), jitbp.SGD(1.0, momentum=0.5)
    before = copies(net)
    with pytest.raises(jitbp.DivergenceError) as info:
        net.learn(HIDDEN_X, HIDDEN_Y, optimizer=opt, epochs=3, batch_size=1)
    error = info.value
    assert isinstance(error, FloatingPointError)
    assert "parameter dense_0.W" in str(error) and "epochs 1-3" in str(error)
    assert "smaller learning rate" in str(error)
    assert (error.epoch, error.batch, error.restored_epoch, error.history) == (3, None, 0, [])
    assert_same_params(net, before)
    assert all(opt.state_of(value) is None for value in net.params.values())


def test_rollback_restores_state_from_an_earlier_learn_call(capture):
    """Benign training first (x = 0 leaves the tiny weight alone), then the divergent data:
    parameters and momentum buffers go back to the end of the benign call, bit for bit."""
    net, opt = hidden_inf_net(), jitbp.SGD(0.1, momentum=0.5)
    net.learn(np.zeros((4, 1)), np.full((4, 1), 0.5), optimizer=opt, epochs=3, batch_size=2)
    before, state = copies(net), states(net, opt)
    assert all(s is not None for s in state.values())
    opt.lr = 1.0
    with pytest.raises(jitbp.DivergenceError):
        net.learn(HIDDEN_X, HIDDEN_Y, optimizer=opt, epochs=2, batch_size=1)
    assert_same_params(net, before)
    assert_same_states(net, opt, state)


def test_non_finite_loss_leaves_the_failing_batch_unapplied(monkeypatch, capture):
    """lr=1e200 makes the second batch's loss overflow; before the rollback (switched off
    here) the state equals training on the first sample alone."""
    monkeypatch.setattr(divergence.Checkpoint, "restore", lambda self: None)
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(6, 2)), rng.normal(size=(6, 1))
    net, opt = jitbp.Sequential(jitbp.layer("dense", 2, 1, seed=0)), jitbp.Adam(lr=1e200)
    with pytest.raises(jitbp.DivergenceError) as info:
        net.learn(X, Y, optimizer=opt, epochs=2, batch_size=1, shuffle=False)
    reference, ref_opt = jitbp.Sequential(jitbp.layer("dense", 2, 1, seed=0)), jitbp.Adam(lr=1e200)
    reference.learn(X[:1], Y[:1], optimizer=ref_opt, epochs=1, batch_size=1)
    error = info.value
    assert (error.epoch, error.batch) == (1, 2)
    assert "loss became inf at epoch 1, batch 2" in str(error) and "lr=1e+200" in str(error)
    assert_same_params(net, copies(reference))
    assert_same_states(net, opt, states(reference, ref_opt))


def test_non_finite_loss_restores_the_last_checkpoint(capture):
    """The weights before the failing batch are finite but huge (the loss is already inf
    there): the start of the call is restored instead, with its optimizer state."""
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(6, 2)), rng.normal(size=(6, 1))
    net, opt = jitbp.Sequential(jitbp.layer("dense", 2, 1, seed=0)), jitbp.Adam(lr=1e200)
    before = copies(net)
    with pytest.raises(jitbp.DivergenceError) as info:
        net.learn(X, Y, optimizer=opt, epochs=2, batch_size=1, shuffle=False)
    error = info.value
    assert (error.epoch, error.batch, error.restored_epoch, error.history, error.batches_applied) == (1, 2, 0, [], 0)
    assert "restored to those after epoch 0 of this call" in str(error)
    assert_same_params(net, before)
    assert all(opt.state_of(value) is None for value in net.params.values())


@pytest.mark.parametrize("lr", [1e6, 1e100, 1e300])
def test_training_resumes_with_a_small_learning_rate_after_divergence(capture, lr):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(64, 3))
    Y = X @ np.array([[1.0], [-2.0], [0.5]])
    net = jitbp.Sequential(jitbp.layer("dense", 3, 4, seed=0), jitbp.layer("dense", 4, 1, seed=1))
    net.learn(X, Y, "sse", jitbp.SGD(lr=1e-3), epochs=2, batch_size=8, seed=0)
    opt = jitbp.SGD(lr=lr, momentum=0.5)
    with pytest.raises(jitbp.DivergenceError):
        net.learn(X, Y, "sse", opt, epochs=20, batch_size=8, seed=0)
    opt.lr = 1e-3
    history = net.learn(X, Y, "sse", opt, epochs=5, batch_size=8, seed=0)
    assert np.all(np.isfinite(history)) and history[-1] < history[0]


def test_non_finite_loss_after_non_finite_weights_rolls_back(capture):
    """With Adam the inf gradient makes the weight NaN, so the next loss is NaN: the
    parameters before that batch are not finite either, so the checkpoint is restored."""
    net, opt = hidden_inf_net(), jitbp.Adam(lr=1.0)
    before = copies(net)
    with pytest.raises(jitbp.DivergenceError) as info:
        net.learn(HIDDEN_X, HIDDEN_Y, optimizer=opt, epochs=3, batch_size=1)
    assert "already NaN or inf" in str(info.value)
    assert (info.value.epoch, info.value.batch, info.value.restored_epoch) == (2, 1, 0)
    assert_same_params(net, before)
    assert all(opt.state_of(value) is None for value in net.params.values())


def test_training_continues_normally_after_a_rollback(capture):
    """The rolled-back optimizer (its state forgotten) trains exactly like a fresh one."""
    net, opt = hidden_inf_net(), jitbp.SGD(1.0, momentum=0.5)
    with pytest.raises(jitbp.DivergenceError):
        net.learn(HIDDEN_X, HIDDEN_Y, optimizer=opt, epochs=3, batch_size=1)
    opt.lr = 0.01
    X, Y = np.array([[0.5], [1.0]]), np.array([[0.2], [0.4]])
    history = net.learn(X, Y, optimizer=opt, epochs=3, seed=0)
    fresh = hidden_inf_net()
    assert history == fresh.learn(X, Y, optimizer=jitbp.SGD(0.01, momentum=0.5), epochs=3, seed=0)
    assert_same_params(net, copies(fresh))


def test_rollback_goes_to_the_last_checkpoint_within_a_call(monkeypatch):
    monkeypatch.setattr(divergence, "CHECK_SAMPLES", 1)
    net, opt = hidden_inf_net(), jitbp.SGD(0.1)
    checkpoint = divergence.Checkpoint(net, opt, 1)
    for value in net.params.values():
        value += 1.0
    checkpoint.verify(1, [0.5])  # the first epoch's loss has nothing to compare with: no copy
    assert checkpoint.epoch == 0
    for value in net.params.values():
        value += 1.0
    checkpoint.verify(2, [0.5, 0.25])
    after_second = copies(net)
    net.params["dense_1.b"][0] = np.nan
    assert checkpoint.due == 3
    with pytest.raises(jitbp.DivergenceError) as info:
        checkpoint.verify(3, [0.5, 0.25, 0.2])
    assert (info.value.restored_epoch, info.value.history) == (2, [0.5, 0.25])
    assert "parameter dense_1.b" in str(info.value) and "epochs 3-3" in str(info.value)
    assert_same_params(net, after_second)


def test_an_exploding_loss_does_not_refresh_the_checkpoint(monkeypatch):
    """Finite weights whose epoch loss rose past MAX_LOSS_RISE times the best are not kept:
    a later divergence goes back to the last calm state."""
    monkeypatch.setattr(divergence, "CHECK_SAMPLES", 1)
    net, opt = hidden_inf_net(), jitbp.SGD(0.1)
    checkpoint = divergence.Checkpoint(net, opt, 1)
    checkpoint.verify(1, [1.0])
    checkpoint.verify(2, [1.0, 0.5])
    calm = copies(net)
    for value in net.params.values():
        value *= 1e150
    checkpoint.verify(3, [1.0, 0.5, 1e30])
    assert checkpoint.epoch == 2
    error = checkpoint.loss_diverged(3, 0, np.inf, [1.0, 0.5, 1e30])
    assert (error.restored_epoch, error.history) == (2, [1.0, 0.5])
    assert_same_params(net, calm)


def test_non_finite_optimizer_state_is_caught_too():
    net, opt = hidden_inf_net(), jitbp.SGD(0.1, momentum=0.9)
    net.learn(np.zeros((2, 1)), np.zeros((2, 1)), optimizer=opt)
    opt.state_of(net.params["dense_1.W"])[0][0, 0] = np.inf
    with pytest.raises(ValueError, match="optimizer state of dense_1.W contains NaN or inf"):
        net.learn(np.zeros((2, 1)), np.zeros((2, 1)), optimizer=opt)


def test_non_finite_parameters_are_refused_before_training():
    net = hidden_inf_net()
    net.params["dense_1.W"][0, 0] = np.inf
    before = copies(net)
    with pytest.raises(ValueError, match="parameter dense_1.W contains NaN or inf before training"):
        net.learn(np.ones((2, 1)), np.ones((2, 1)))
    assert_same_params(net, before)


@pytest.mark.parametrize("samples, epochs, checks", [(4, 300, 3), (4, 128, 1), (512, 5, 5), (100, 12, 2)])
def test_weights_are_checked_once_per_512_samples_and_at_the_end(monkeypatch, samples, epochs, checks):
    """The O(params) check and copy are amortised: checked before training, every
    ceil(512 / n) epochs and after the last; copied before training and at each of those
    but the first (its loss has no earlier one to show it is not exploding) and the last
    (nothing can roll back to it)."""
    taken, checked = [], []
    take, non_finite = divergence.Checkpoint.take, divergence.Checkpoint.non_finite
    monkeypatch.setattr(divergence.Checkpoint, "take", lambda self, epoch: taken.append(epoch) or take(self, epoch))
    monkeypatch.setattr(divergence.Checkpoint, "non_finite", lambda self: checked.append(1) or non_finite(self))
    net = jitbp.Sequential(jitbp.layer("dense", 2, 1, seed=0))
    rng = np.random.default_rng(0)
    net.learn(rng.normal(size=(samples, 2)), rng.normal(size=(samples, 1)), optimizer=jitbp.SGD(0.01),
              epochs=epochs, batch_size=32)
    every = -(-512 // samples)
    due = list(range(every, epochs + 1, every))
    assert taken == [0] + [epoch for epoch in due if 1 < epoch < epochs]  # epoch 1: no loss to compare
    assert len(checked) == 1 + len(set(due) | {epochs}) == 1 + checks


def test_models_over_the_checkpoint_limit_keep_no_copy_and_say_so(monkeypatch):
    """Large models are not doubled in memory; a hidden inf is still reported."""
    import jitbp.divergence

    monkeypatch.setattr(jitbp.divergence, "CHECKPOINT_MAX_BYTES", 8)
    net = jitbp.Sequential(jitbp.layer("dense", 2, 2, seed=0))
    checkpoint = jitbp.divergence.Checkpoint(net, jitbp.SGD(lr=0.1), 4)
    assert checkpoint.saved is None
    net.params["dense_0.W"][0, 0] = np.inf
    with pytest.raises(jitbp.DivergenceError, match="could not be restored"):
        checkpoint.verify(1, [0.0])
