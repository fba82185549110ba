"""Random networks and data shared by the torch oracle and the captured-epoch tests (no torch)."""
import jitbp


def chain(rng, loss):
    """A random MLP whose output suits ``loss``."""
    seeds = rng.integers(0, 2**31, size=3)
    layers = [jitbp.layer("dense", 5, 7, seed=seeds[0]), jitbp.layer("tanh"),
              jitbp.layer("dense", 7, 6, seed=seeds[1]), jitbp.layer("relu"),
              jitbp.layer("dense", 6, 3, seed=seeds[2])]
    if loss == "bce":
        layers.append(jitbp.layer("sigmoid"))
    return jitbp.Sequential(*layers)


def graph(rng, loss):
    """Fan-out, add, concat, softmax and a shared layer in one graph."""
    seeds = rng.integers(0, 2**31, size=4)
    x = jitbp.Input(5)
    h = jitbp.layer("dense", 5, 4, seed=seeds[0])(x)
    shared = jitbp.layer("dense", 4, 4, seed=seeds[1])
    a = jitbp.layer("tanh")(shared(h))
    b = jitbp.layer("sigmoid")(shared(jitbp.layer("relu")(h)))
    joined = jitbp.layer("concat")(jitbp.layer("add")(a, b, h), jitbp.layer("softmax")(h))
    out = jitbp.layer("dense", 8, 3, seed=seeds[2])(joined)
    if loss == "bce":
        out = jitbp.layer("sigmoid")(out)
    return jitbp.Network(x, out)


def data(rng, loss, n=11):
    X = rng.normal(size=(n, 5))
    if loss == "cross_entropy":
        return X, rng.integers(0, 3, size=n)
    if loss == "bce":
        return X, rng.uniform(size=(n, 3))
    return X, rng.normal(size=(n, 3))
