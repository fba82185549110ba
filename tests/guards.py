"""Shared by the tests that bad input or changed state is refused before any kernel runs."""
import jitbp


def mlp():
    return jitbp.Sequential(jitbp.layer("dense", 3, 4, seed=0), jitbp.layer("tanh"), jitbp.layer("dense", 4, 2, seed=1))


class Tripwire(AssertionError):
    pass


def tripwire(*args, **kwargs):
    raise Tripwire("a kernel ran before validation finished")


def guard(net, monkeypatch):
    """Make ``net``'s engine raise :class:`Tripwire` if anything runs; return copies of its parameters."""
    for name in ("forward", "train_epoch", "backward", "loss"):
        monkeypatch.setattr(net.engine, name, tripwire)
    return {k: v.copy() for k, v in net.params.items()}
