"""sample_weight and class_weight in learn: against torch's weighted losses, the same on
the interpreted and captured engines, and refused when malformed before any kernel runs."""
import numpy as np
import pytest

import jitbp

torch = pytest.importorskip("torch")


def net(n_in, n_out, dtype=np.float64):
    return jitbp.Sequential(jitbp.layer("dense", n_in, 5, seed=1), jitbp.layer("tanh"),
                            jitbp.layer("dense", 5, n_out, seed=2), dtype=dtype)


def torch_twin(model_net):
    model = torch.nn.Sequential(torch.nn.Linear(*model_net.params["dense_0.W"].shape[::-1]), torch.nn.Tanh(),
                                torch.nn.Linear(*model_net.params["dense_1.W"].shape[::-1])).double()
    with torch.no_grad():
        for lin, k in ((model[0], 0), (model[2], 1)):
            lin.weight.copy_(torch.from_numpy(model_net.params[f"dense_{k}.W"]))
            lin.bias.copy_(torch.from_numpy(model_net.params[f"dense_{k}.b"]))
    return model


def torch_loss(name, out, target, w):
    """Per-sample losses reduced as the brief states: (w * l).sum() / w.sum() for mean losses."""
    if name == "cross_entropy":
        per = torch.nn.functional.cross_entropy(out, target, reduction="none")
    elif name in ("mse", "mae"):
        fn = torch.nn.functional.mse_loss if name == "mse" else torch.nn.functional.l1_loss
        per = fn(out, target, reduction="none").mean(1)
    elif name == "bce":
        per = torch.nn.functional.binary_cross_entropy(torch.sigmoid(out), target, reduction="none").mean(1)
    else:  # sse
        per = ((out - target) ** 2).sum(1)
    return (w * per).sum() / w.sum() if name != "sse" else (w * per).sum()


def data(name, rng, n=10):
    X = rng.normal(size=(n, 3))
    if name == "cross_entropy":
        return X, rng.integers(0, 4, size=n), 4
    if name == "bce":
        return X, rng.uniform(size=(n, 2)), 2
    return X, rng.normal(size=(n, 2)), 2


@pytest.mark.parametrize("name", ["mse", "mae", "sse", "cross_entropy", "bce"])
@pytest.mark.parametrize("batch_size", [None, 4])
def test_sample_weight_matches_torch(name, batch_size, rng):
    X, Y, n_out = data(name, rng)
    w = rng.uniform(0.0, 2.0, size=len(X))
    w[3] = 0.0
    ours = net(3, n_out)
    if name == "bce":
        ours = jitbp.Sequential(*ours.layers, jitbp.layer("sigmoid"))
    model = torch_twin(net(3, n_out))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    size = batch_size or len(X)
    for _ in range(2):
        for start in range(0, len(X), size):
            rows = slice(start, start + size)
            opt.zero_grad()
            target = torch.from_numpy(Y[rows])
            torch_loss(name, model(torch.from_numpy(X[rows])), target, torch.from_numpy(w[rows])).backward()
            opt.step()
    history = ours.learn(X, Y, name, jitbp.SGD(lr=0.1), epochs=2, batch_size=batch_size, shuffle=False,
                         sample_weight=w)
    for lin, k in ((model[0], 0), (model[2], 1)):
        np.testing.assert_allclose(ours.params[f"dense_{k}.W"], lin.weight.detach().numpy(), rtol=1e-10,
                                   atol=1e-13)
    if batch_size is None:  # the epoch loss is the weighted loss before the last step
        assert np.isfinite(history[-1])


def test_class_weight_matches_torch_cross_entropy_weight(rng):
    X, Y, _ = data("cross_entropy", rng, n=12)
    classes = np.array([0.5, 2.0, 1.0, 3.0])
    sample = rng.uniform(0.5, 1.5, size=12)
    ours, model = net(3, 4), torch_twin(net(3, 4))
    before = ours.loss(X, Y, "cross_entropy")
    loss = torch.nn.CrossEntropyLoss(weight=torch.from_numpy(classes))
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    for _ in range(3):
        opt.zero_grad()
        loss(model(torch.from_numpy(X)), torch.from_numpy(Y)).backward()
        opt.step()
    history = ours.learn(X, Y, "cross_entropy", jitbp.SGD(lr=0.2), epochs=3,
                         class_weight={k: float(c) for k, c in enumerate(classes)})
    np.testing.assert_allclose(ours.params["dense_0.W"], model[0].weight.detach().numpy(), rtol=1e-10, atol=1e-13)
    first = torch.nn.CrossEntropyLoss(weight=torch.from_numpy(classes))(torch_twin(net(3, 4))(torch.from_numpy(X)),
                                                                        torch.from_numpy(Y))
    assert history[0] == pytest.approx(float(first.detach()), rel=1e-12) and history[0] != pytest.approx(before)
    # both together: w_i = sample_i * class[y_i]
    both, twin = net(3, 4), torch_twin(net(3, 4))
    both.learn(X, Y, "cross_entropy", jitbp.SGD(lr=0.2), epochs=1, class_weight="balanced", sample_weight=sample)
    counts = np.bincount(Y, minlength=4)
    w = sample * 12 / (len(np.unique(Y)) * counts[Y])
    opt = torch.optim.SGD(twin.parameters(), lr=0.2)
    torch_loss("cross_entropy", twin(torch.from_numpy(X)), torch.from_numpy(Y), torch.from_numpy(w)).backward()
    opt.step()
    np.testing.assert_allclose(both.params["dense_1.W"], twin[2].weight.detach().numpy(), rtol=1e-10, atol=1e-13)


def test_unit_weights_train_like_no_weights(rng):
    X, Y, _ = data("mse", rng)
    plain, weighted = net(3, 2), net(3, 2)
    plain.learn(X, Y, "mse", jitbp.Adam(lr=0.01), epochs=3, batch_size=3, seed=0)
    weighted.learn(X, Y, "mse", jitbp.Adam(lr=0.01), epochs=3, batch_size=3, seed=0, sample_weight=np.ones(10))
    for k in plain.params:
        np.testing.assert_allclose(weighted.params[k], plain.params[k], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", ["mse", "cross_entropy"])
def test_captured_engine_gives_the_same_weighted_training(name, rng, monkeypatch):
    X, Y, n_out = data(name, rng, n=24)
    w = rng.uniform(0.0, 3.0, size=24)
    runs = []
    for mode in ("never", "always"):
        monkeypatch.setenv("JITBP_CAPTURE", mode)
        model = net(3, n_out)
        history = model.learn(X, Y, name, jitbp.SGD(lr=0.1, momentum=0.9), epochs=3, batch_size=5, seed=3,
                              sample_weight=w)
        runs.append((list(history), model.params))
    np.testing.assert_allclose(runs[0][0], runs[1][0], rtol=1e-12)
    for k in runs[0][1]:
        np.testing.assert_allclose(runs[0][1][k], runs[1][1][k], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"sample_weight": np.ones(9)}, ValueError, r"shape \(10,\)"),
    ({"sample_weight": np.ones((10, 1))}, ValueError, r"shape \(10,\)"),
    ({"sample_weight": np.r_[np.ones(9), np.nan]}, ValueError, "finite"),
    ({"sample_weight": np.r_[np.ones(9), -1.0]}, ValueError, "non-negative"),
    ({"sample_weight": np.zeros(10)}, ValueError, "weight of zero"),
    ({"sample_weight": ["a"] * 10}, TypeError, "numbers"),
    ({"class_weight": {0: 1.0}}, ValueError, "class labels"),
])
def test_bad_weights_are_refused_before_training(kwargs, error, match, rng):
    X, Y, _ = data("mse", rng)
    model = net(3, 2)
    before = {k: v.copy() for k, v in model.params.items()}
    with pytest.raises(error, match=match):
        model.learn(X, Y, "mse", epochs=1, **kwargs)
    assert all(np.array_equal(before[k], model.params[k]) for k in before)


def test_bad_class_weight_is_refused(rng):
    X, Y, _ = data("cross_entropy", rng)
    with pytest.raises(ValueError, match=r"class_weight\[1\]"):
        net(3, 4).learn(X, Y, "cross_entropy", class_weight={1: -2.0})
    with pytest.raises(ValueError, match="'balanced'"):
        net(3, 4).learn(X, Y, "cross_entropy", class_weight="even")


def test_estimators_pass_weights_to_learn(rng):
    from jitbp.sklearn import MLPClassifier, MLPRegressor

    X = rng.normal(size=(30, 4))
    y = np.where(X[:, 0] > 0, "yes", "no")
    w = rng.uniform(0.0, 2.0, size=30)
    kwargs = dict(hidden_layer_sizes=(6,), max_iter=3, batch_size=30, random_state=0, shuffle=False, tol=0.0,
                  n_iter_no_change=100)
    plain = MLPClassifier(**kwargs).fit(X, y)
    weighted = MLPClassifier(**kwargs).fit(X, y, sample_weight=w)
    by_class = MLPClassifier(class_weight={"yes": 3.0}, **kwargs).fit(X, y)
    # the same fit by hand: labels as class indices, class weights on them
    net = MLPClassifier(**kwargs)._build_network(4, 2, np.random.RandomState(0).randint(2**31))
    net.learn(X, (y == "yes").astype(int), "cross_entropy", jitbp.Adam(lr=1e-3, weight_decay=1e-4 / 30),
              epochs=3, shuffle=False, class_weight={1: 3.0})
    np.testing.assert_allclose(by_class.coefs_[0], net.params["dense_0.W"].T, rtol=1e-12)
    assert not np.allclose(plain.coefs_[0], weighted.coefs_[0])
    assert not np.allclose(plain.coefs_[0], by_class.coefs_[0])
    with pytest.raises(ValueError, match="not in classes_"):
        MLPClassifier(class_weight={"maybe": 2.0}, **kwargs).fit(X, y)
    reg = MLPRegressor(hidden_layer_sizes=(6,), max_iter=2, random_state=0)
    assert "class_weight" not in reg.get_params()
    reg.fit(X, X[:, 1], sample_weight=w)
