"""Learning-rate schedules against torch.optim.lr_scheduler, one scheduler step per epoch."""
import numpy as np
import pytest

import jitbp
from conftest import seed_network
from jitbp.schedules import CosineLR, ExponentialLR, OneCycleLR, ReduceLROnPlateau, StepLR

torch = pytest.importorskip("torch", reason="torch.optim.lr_scheduler is the oracle for the schedules")
EPOCHS = 12


@pytest.fixture(autouse=True)
def _interpreted(monkeypatch):
    monkeypatch.setenv("JITBP_CAPTURE", "never")


def torch_rates(make, lr=0.1, losses=None):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    sched = make(opt)
    rates = []
    for epoch in range(EPOCHS):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step(losses[epoch]) if losses is not None else sched.step()
    return rates


def jitbp_rates(schedule, lr=0.1):
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(16, 2)), rng.normal(size=(16, 1))
    net = jitbp.Sequential(jitbp.layer("dense", 2, 1, seed=0))
    return net.learn(X, Y, optimizer=jitbp.SGD(lr), epochs=EPOCHS, callbacks=[schedule]).history["lr"]


S = torch.optim.lr_scheduler
CASES = {
    "step": (StepLR(3, gamma=0.5), lambda o: S.StepLR(o, 3, gamma=0.5)),
    "exponential": (ExponentialLR(0.8), lambda o: S.ExponentialLR(o, 0.8)),
    "cosine": (CosineLR(EPOCHS, eta_min=0.001), lambda o: S.CosineAnnealingLR(o, EPOCHS, eta_min=0.001)),
    "cosine_warmup": (CosineLR(EPOCHS, warmup=3, warmup_start=0.1), lambda o: S.SequentialLR(
        o, [S.LinearLR(o, start_factor=0.1, total_iters=3), S.CosineAnnealingLR(o, EPOCHS - 3)], milestones=[3])),
    "one_cycle": (OneCycleLR(0.5, EPOCHS), lambda o: S.OneCycleLR(o, max_lr=0.5, total_steps=EPOCHS)),
}


@pytest.mark.parametrize("name", CASES)
def test_schedule_matches_torch(name):
    ours, theirs = CASES[name]
    np.testing.assert_allclose(jitbp_rates(ours), torch_rates(theirs), rtol=1e-9, atol=1e-12)


def test_reduce_on_plateau_matches_torch():
    losses = [1.0, 0.9, 0.9, 0.9, 0.9, 0.95, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]
    ours = ReduceLROnPlateau("loss", factor=0.5, patience=2, cooldown=1)
    fake = iter(losses)
    rates = []

    class Feed(jitbp.callbacks.Callback):  # replaces the training loss by the scripted one
        def on_epoch_end(self, epoch, logs):
            rates.append(self.optimizer.lr)
            return ours.on_epoch_end(epoch, {"loss": next(fake)})

    ours.optimizer = None
    rng = np.random.default_rng(0)
    net = jitbp.Sequential(jitbp.layer("dense", 2, 1, seed=0))
    opt = jitbp.SGD(0.1)
    ours.optimizer = opt
    ours.on_train_begin()
    net.learn(rng.normal(size=(8, 2)), rng.normal(size=(8, 1)), optimizer=opt, epochs=EPOCHS, callbacks=[Feed()])
    expected = torch_rates(lambda o: S.ReduceLROnPlateau(o, factor=0.5, patience=2, cooldown=1), losses=losses)
    np.testing.assert_allclose(rates, expected)


@pytest.mark.parametrize("capture", ["never", "always"])
def test_the_scheduled_rate_is_the_one_trained_with(monkeypatch, capture):
    monkeypatch.setenv("JITBP_CAPTURE", capture)
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(32, 2)), rng.random(size=(32, 2))
    a, b = seed_network(), seed_network()  # the graph other tests capture: its compiled epoch is cached
    a.learn(X, Y, optimizer=jitbp.SGD(0.1), epochs=4, batch_size=8, shuffle=False, callbacks=[ExponentialLR(0.5)])
    opt = jitbp.SGD(0.1)
    for epoch in range(4):
        opt.lr = 0.1 * 0.5 ** epoch
        b.learn(X, Y, optimizer=opt, epochs=1, batch_size=8, shuffle=False)
    for key, value in a.params.items():
        np.testing.assert_allclose(value, b.params[key], rtol=1e-12)


def test_a_second_learn_restarts_the_schedule_from_the_first_base_rate():
    """The first call ends at CosineLR's eta_min (0); the second must not take that as its base."""
    net, opt, schedule = seed_network(), jitbp.SGD(lr=0.1), CosineLR(epochs=4)
    X, Y = np.array([[0.5, -0.5]]), np.array([[0.9, 0.1]])
    first = net.learn(X, Y, "half_sse", opt, epochs=4, callbacks=[schedule])
    second = net.learn(X, Y, "half_sse", opt, epochs=4, callbacks=[schedule])
    assert first.history["lr"] == second.history["lr"] and first.history["lr"][0] == 0.1


def test_one_cycle_needs_an_epoch_in_each_phase():
    with pytest.raises(ValueError, match="pct_start"):
        OneCycleLR(max_lr=0.1, epochs=10, pct_start=0.1)


STEP_CASES = {
    "step": (StepLR(3, gamma=0.5, per="step"), lambda o, n: S.StepLR(o, 3, gamma=0.5)),
    "exponential": (ExponentialLR(0.8, per="step"), lambda o, n: S.ExponentialLR(o, 0.8)),
    "cosine_warmup": (CosineLR(None, warmup=3, warmup_start=0.1, per="step"), lambda o, n: S.SequentialLR(
        o, [S.LinearLR(o, start_factor=0.1, total_iters=3), S.CosineAnnealingLR(o, n - 3)], milestones=[3])),
    "one_cycle": (OneCycleLR(0.5, None, per="step"), lambda o, n: S.OneCycleLR(
        o, max_lr=0.5, total_steps=n, cycle_momentum=False)),  # ours keeps the momentum fixed
}


@pytest.mark.parametrize("name", STEP_CASES)
def test_a_per_step_schedule_trains_as_torch_stepping_its_scheduler_every_batch(name):
    """3 epochs of 4 batches (the last partial): the weights equal torch's with the scheduler
    stepped after every batch, so every step ran at torch's rate for it."""
    from torch_mirror import torch_train

    ours, theirs = STEP_CASES[name]
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(14, 2)), rng.random(size=(14, 2))
    net, reference = seed_network(), seed_network()
    opt = jitbp.SGD(0.1, momentum=0.9)
    history = net.learn(X, Y, "mse", opt, epochs=3, batch_size=4, shuffle=False, callbacks=[ours])
    losses, params = torch_train(reference, X, Y, "mse", jitbp.SGD(0.1, momentum=0.9), 3, 4,
                                 scheduler=lambda o: theirs(o, 12))
    np.testing.assert_allclose(list(history), losses, rtol=1e-12)
    for key, value in net.params.items():
        np.testing.assert_allclose(value, params[key], rtol=1e-12, atol=1e-15, err_msg=key)
    expected = torch_rates(lambda o: theirs(o, 12))  # EPOCHS == 12 steps
    np.testing.assert_allclose(ours.rates(0, 12), expected, rtol=1e-12)
    assert history.history["lr"] == [ours.rates(0, 12)[k] for k in (3, 7, 11)]  # each epoch's last step


@pytest.mark.parametrize("optimizer", [lambda: jitbp.Adam(0.05), lambda: jitbp.Adagrad(0.1, lr_decay=0.01)])
def test_captured_and_interpreted_epochs_take_the_same_per_step_rates(monkeypatch, optimizer):
    rng = np.random.default_rng(3)
    X, Y = rng.normal(size=(30, 2)), rng.random(size=(30, 2))
    runs = {}
    for capture in ("never", "always"):
        monkeypatch.setenv("JITBP_CAPTURE", capture)
        net, opt = seed_network(), optimizer()
        history = net.learn(X, Y, "mse", opt, epochs=3, batch_size=8, seed=4,
                            callbacks=[CosineLR(None, warmup=2, per="step")])
        runs[capture] = (list(history), net.params, opt.lr)
    (h1, p1, lr1), (h2, p2, lr2) = runs["never"], runs["always"]
    assert h1 == h2 and lr1 == lr2
    for key in p1:
        np.testing.assert_array_equal(p1[key], p2[key], err_msg=key)
    monkeypatch.setenv("JITBP_CAPTURE", "always")  # and the rates did change the result
    constant = seed_network()
    constant.learn(X, Y, "mse", optimizer(), epochs=3, batch_size=8, seed=4)
    assert any(not np.array_equal(constant.params[key], p1[key]) for key in p1)


def test_a_per_step_schedule_is_refused_beside_another_rate_setter():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(8, 2)), rng.normal(size=(8, 2))
    with pytest.raises(ValueError, match="per-step schedule.*ExponentialLR"):
        seed_network().learn(X, Y, callbacks=[CosineLR(None, per="step"), ExponentialLR(0.9)])
    with pytest.raises(ValueError, match="per must be"):
        StepLR(2, per="batch")
    with pytest.raises(ValueError, match="needs per='step'"):
        CosineLR(None)
