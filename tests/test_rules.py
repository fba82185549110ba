"""Optimizer records (jitbp.rules): the kernels' dispatch against each record's own math,
AdamW against torch.optim.AdamW, and a plugin optimizer registered through the hook."""
import math

import numpy as np
import pytest

import jitbp
from jitbp import kernels, optim, plugins, rules
from jitbp.scalar import scalar

BUILTINS = [optim.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01), optim.Adam(lr=0.01, weight_decay=0.1),
            optim.RMSprop(lr=0.01, weight_decay=0.1), optim.Adagrad(lr=0.1, lr_decay=0.1, weight_decay=0.1),
            optim.AdamW(lr=0.01, weight_decay=0.2)]


def test_every_record_has_a_class_and_a_dispatch_branch():
    """Each built-in id routes to its own record's functions in updated/update_row (a rule
    with no branch would fall through to ACCUMULATE and leave the parameter unchanged)."""
    assert {opt.rule for opt in BUILTINS} == set(rules.RULES) == rules.BUILTIN_IDS
    assert rules.ACCUMULATE not in rules.RULES
    rng = np.random.default_rng(3)
    for opt in BUILTINS:
        spec = opt.spec
        p, g = rng.normal(size=9), rng.normal(size=9)
        state = rng.uniform(0.1, 1.0, size=(opt.n_slots, 9))
        hyper = opt.hyper(3)
        assert len(hyper) == len(spec.hyper)
        expected_p, expected_state = p.copy(), state.copy()
        c = spec.constants.py_func(hyper)
        assert len(c) == rules.N_CONSTANTS
        for i in range(9):
            s = [expected_state[k, i] if k < opt.n_slots else 0.0 for k in range(2)]
            expected_p[i], *s = spec.update.py_func(expected_p[i], g[i], s[0], s[1], c)
            for k in range(opt.n_slots):
                expected_state[k, i] = s[k]
        row_p, row_state = p.copy(), state.copy()
        kernels.update_row(opt.rule, row_p, g, row_state, 0, hyper)
        one_p, one_state = p.copy(), state.copy()
        for i in range(9):
            one_p[i] = kernels.updated(opt.rule, one_p[i], g[i], one_state, i, hyper)
        for got_p, got_state in ((row_p, row_state), (one_p, one_state)):
            np.testing.assert_allclose(got_p, expected_p, rtol=1e-14, err_msg=spec.name)
            np.testing.assert_allclose(got_state, expected_state, rtol=1e-14, err_msg=spec.name)
            assert not np.allclose(got_p, p)


def test_hyper_vector_is_named_by_the_record():
    opt = optim.Adam(lr=0.05, betas=(0.5, 0.75), eps=1e-3, weight_decay=0.1)
    hyper = dict(zip(opt.spec.hyper, opt.hyper(2)))
    assert hyper["lr"] == 0.05 and hyper["beta1"] == 0.5 and hyper["beta2"] == 0.75
    assert hyper["bc1"] == pytest.approx(1 - 0.5 ** 2) and hyper["bc2_sqrt"] == pytest.approx(math.sqrt(1 - 0.75 ** 2))
    ada = dict(zip(optim.Adagrad().spec.hyper, optim.Adagrad(lr=0.2, lr_decay=0.5).hyper(3)))
    assert ada["clr"] == pytest.approx(0.2 / (1 + 2 * 0.5))


def test_adamw_matches_torch_over_steps(rng):
    torch = pytest.importorskip("torch")
    X, Y = rng.normal(size=(8, 4)), rng.normal(size=(8, 2))
    net = jitbp.Sequential(jitbp.layer("dense", 4, 5, seed=1), jitbp.layer("tanh"), jitbp.layer("dense", 5, 2, seed=2))
    model = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2)).double()
    with torch.no_grad():
        for lin, k in ((model[0], 0), (model[2], 1)):
            lin.weight.copy_(torch.from_numpy(net.params[f"dense_{k}.W"]))
            lin.bias.copy_(torch.from_numpy(net.params[f"dense_{k}.b"]))
    settings = {"lr": 0.05, "betas": (0.8, 0.9), "eps": 1e-6, "weight_decay": 0.3}
    reference = torch.optim.AdamW(model.parameters(), **settings)
    ours = jitbp.AdamW(**settings)
    tx, ty = torch.from_numpy(X), torch.from_numpy(Y)
    for _ in range(6):
        reference.zero_grad()
        torch.nn.functional.mse_loss(model(tx), ty).backward()
        reference.step()
        net.learn(X, Y, "mse", ours, epochs=1)
    for lin, k in ((model[0], 0), (model[2], 1)):
        np.testing.assert_allclose(net.params[f"dense_{k}.W"], lin.weight.detach().numpy(), rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(net.params[f"dense_{k}.b"], lin.bias.detach().numpy(), rtol=1e-10, atol=1e-13)


def test_adamw_is_not_adam_with_l2(rng):
    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(6, 1))
    nets = [jitbp.Sequential(jitbp.layer("dense", 3, 1, seed=4)) for _ in range(2)]
    nets[0].learn(X, Y, "mse", jitbp.AdamW(lr=0.1, weight_decay=0.5), epochs=3)
    nets[1].learn(X, Y, "mse", jitbp.Adam(lr=0.1, weight_decay=0.5), epochs=3)
    assert not np.allclose(nets[0].params["dense_0.W"], nets[1].params["dense_0.W"])


# --- a third-party optimizer: sign descent with decay, in one file's worth of code --------------

SIGN_HYPER = ("lr", "decay")
SIGN_LR, SIGN_DECAY = range(len(SIGN_HYPER))


@scalar
def sign_at_step(base, step, out):
    pass


@scalar
def sign_constants(hyper):
    return hyper[SIGN_LR], hyper[SIGN_DECAY], 0.0, 0.0, 0.0, 0.0, 0.0


@scalar
def sign_update(p, g, m, unused, c):
    m = c[1] * m + g
    return p - c[0] * (1.0 if m > 0.0 else (-1.0 if m < 0.0 else 0.0)), m, unused


class SignDescent(optim.Optimizer):
    """p -= lr * sign(m), m = decay * m + g."""

    spec = rules.Rule("sign", 101, ("m",), SIGN_HYPER, (), sign_at_step, sign_constants, sign_update)
    decay = optim.Hyper(high=1.0)

    def __init__(self, lr=0.01, decay=0.5):
        super().__init__(lr)
        self.decay = decay

    def settings(self):
        return {"lr": self.lr, "decay": self.decay}


class SignPlugin:
    @jitbp.hookspecs.hookimpl
    def register_optimizers(self, register):
        register(SignDescent)


def sign_reference(net, X, Y, epochs, size, lr=0.05, decay=0.5):
    """The published rule from gradients jitbp computes without updating (Network.gradients)."""
    params = {k: v.copy() for k, v in net.params.items()}
    momenta = {k: np.zeros_like(v) for k, v in params.items()}
    probe = jitbp.Sequential(*(jitbp.layer("dense", 3, 4, seed=5), jitbp.layer("sigmoid"),
                               jitbp.layer("dense", 4, 2, seed=6)))
    for _ in range(epochs):
        for start in range(0, len(X), size):
            for k in params:
                probe.params[k][...] = params[k]
            grads = probe.gradients(X[start:start + size], Y[start:start + size], "mse")
            for k in params:
                momenta[k] = decay * momenta[k] + grads[k]
                params[k] = params[k] - lr * np.sign(momenta[k])
    return params


@pytest.mark.parametrize("batch_size", [None, 2])
def test_plugin_optimizer_trains_through_gradient_buffers(batch_size, rng):
    registry = plugins.registry()
    X, Y = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    try:
        info = registry.register_plugin(SignPlugin(), name="sign-plugin")
        assert info.optimizers == ("SignDescent",) and not info.error
        assert optim.OPTIMIZERS["SignDescent"] is SignDescent
        net = jitbp.Sequential(jitbp.layer("dense", 3, 4, seed=5), jitbp.layer("sigmoid"),
                               jitbp.layer("dense", 4, 2, seed=6))
        expected = sign_reference(net, X, Y, 3, batch_size or len(X))
        net.learn(X, Y, "mse", SignDescent(lr=0.05, decay=0.5), epochs=3, batch_size=batch_size, shuffle=False)
        for k in expected:
            np.testing.assert_allclose(net.params[k], expected[k], rtol=1e-12, err_msg=k)
    finally:
        registry.unregister_plugin("sign-plugin")
    assert "SignDescent" not in optim.OPTIMIZERS


def test_register_optimizer_refuses_a_taken_id():
    class Clash(optim.Optimizer):
        spec = rules.Rule("clash", rules.ADAM, (), ("lr",), (), sign_at_step, sign_constants, sign_update)

    with pytest.raises(jitbp.PluginError, match="rule id 2 is already taken by Adam"):
        optim.register_optimizer(Clash)


def test_adamw_resumes_from_a_model_file(tmp_path, rng):
    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    make = lambda: jitbp.Sequential(jitbp.layer("dense", 3, 2, seed=4))  # noqa: E731
    straight, resumed = make(), make()
    straight.learn(X, Y, "mse", jitbp.AdamW(lr=0.05, weight_decay=0.2), epochs=4)
    opt = jitbp.AdamW(lr=0.05, weight_decay=0.2)
    resumed.learn(X, Y, "mse", opt, epochs=2)
    resumed.save(tmp_path / "m.jitbp", optimizer=opt)
    loaded = jitbp.load(tmp_path / "m.jitbp")
    assert type(loaded.saved_optimizer) is jitbp.AdamW and loaded.saved_optimizer.settings() == opt.settings()
    loaded.learn(X, Y, "mse", loaded.saved_optimizer, epochs=2)
    for k in straight.params:
        np.testing.assert_allclose(loaded.params[k], straight.params[k], rtol=1e-13)
