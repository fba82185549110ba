"""Training jobs run both under ``mpiexec -n 2`` (with DataParallel) and in one process.

``python tests/mpi_cases.py SCENARIO OUT_DIR`` (under mpiexec) writes each rank's
result of every case of SCENARIO to ``OUT_DIR/<case>.rank<r>.npz``;
tests/test_distributed.py compares them with :func:`run_case` in one process.
"""
import json
import os
import sys

import numpy as np

import jitbp

N_SAMPLES, BATCH, EPOCHS, SEED = 37, 8, 3, 3  # batches of 8 (slices 4 + 4), the last of 5 (2 + 3)
#: A target whose squared error overflows in the divergence cases: batch 4 without shuffling, rank 1's slice.
BIG_ROW = 29


def mlp():
    return jitbp.Sequential(jitbp.layer("dense", 5, 7, seed=1), jitbp.layer("tanh"),
                            jitbp.layer("dense", 7, 3, seed=2))


def shared_net():
    """A layer called twice: its update waits for both calls' gradients."""
    x = jitbp.Input((5,))
    middle = jitbp.layer("dense", 7, 7, seed=2)
    h = jitbp.layer("tanh")(jitbp.layer("dense", 5, 7, seed=1)(x))
    h = middle(jitbp.layer("tanh")(middle(h)))
    return jitbp.Network(x, jitbp.layer("dense", 7, 3, seed=3)(h))


def data(big_row=False):
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(N_SAMPLES, 5)), rng.normal(size=(N_SAMPLES, 3))
    if big_row:
        Y[BIG_ROW] = 1e200
    return X, Y


#: case -> (network, optimizer, loss, DataParallel arguments, learn arguments)
CASES = {
    "gradients-sgd": (mlp, lambda: jitbp.SGD(lr=0.1), "mse", {}, {}),
    "gradients-sgd-sum-loss": (mlp, lambda: jitbp.SGD(lr=0.01), "half_sse", {}, {}),
    "gradients-momentum": (mlp, lambda: jitbp.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
                           "mse", {"bucket_bytes": 64}, {}),
    "gradients-adam": (mlp, lambda: jitbp.Adam(lr=0.01), "mse", {}, {}),
    "gradients-adam-shared-layer": (shared_net, lambda: jitbp.Adam(lr=0.01), "mse", {"bucket_bytes": 64}, {}),
    "weights-sgd": (mlp, lambda: jitbp.SGD(lr=0.1), "mse", {"sync": "weights"}, {}),
    "weights-sgd-sum-loss": (mlp, lambda: jitbp.SGD(lr=0.01), "half_sse", {"sync": "weights"}, {}),
    "gradients-adam-batch-1": (mlp, lambda: jitbp.Adam(lr=0.01), "mse", {}, {"batch_size": 1}),  # a slice is empty
    "weights-sgd-batch-1": (mlp, lambda: jitbp.SGD(lr=0.1), "mse", {"sync": "weights"}, {"batch_size": 1}),
    "gradients-diverges": (mlp, lambda: jitbp.SGD(lr=0.1), "mse", {}, {"shuffle": False, "big_row": True}),
    "weights-diverges": (mlp, lambda: jitbp.SGD(lr=0.1), "mse", {"sync": "weights"},
                         {"shuffle": False, "big_row": True}),
    "weights-every-2-diverges": (mlp, lambda: jitbp.Adam(lr=0.01), "mse", {"sync": "weights", "every": 2},
                                 {"shuffle": False, "big_row": True}),
}
#: Cases whose result must equal one process training on the combined batches.
EXACT = [case for case in CASES if case != "weights-every-2-diverges"]


def run_case(case, parallel=None, timeout=200.0):
    """Train ``case`` (with ``DataParallel(**its arguments)`` when ``parallel``): its result as arrays."""
    build, make_optimizer, loss, parallel_args, learn_args = CASES[case]
    learn_args = {"batch_size": BATCH, **learn_args}
    X, Y = data(learn_args.pop("big_row", False))
    net, optimizer = build(), make_optimizer()
    if parallel:
        from jitbp.distributed import DataParallel

        parallel = DataParallel(timeout=timeout, **parallel_args)
    result = {}
    try:
        history = net.learn(X, Y, loss=loss, optimizer=optimizer, epochs=EPOCHS, seed=SEED, parallel=parallel,
                            **learn_args)
        result["history"] = np.array(history)
    except jitbp.DivergenceError as exc:
        result["error"] = np.array(json.dumps({"batch": exc.batch, "epoch": exc.epoch, "message": str(exc)}))
    for key, value in net.params.items():
        result[key] = value
        state = optimizer.state_of(value)
        if state is not None and state[1]:
            result[key + ".slots"], result[key + ".step"] = state[0], np.array(state[1])
    return result


def different_setups(out):
    """Rank 1 gets one sample fewer, then a wider network: both ranks must say so."""
    from jitbp.distributed import DataParallel, DistributedError

    rank = DataParallel().rank
    X, Y = data()
    messages = {}
    for what in ("samples", "network"):
        fewer = rank == 1 and what == "samples"
        net = mlp() if not (rank == 1 and what == "network") else jitbp.Sequential(
            jitbp.layer("dense", 5, 8, seed=1), jitbp.layer("tanh"), jitbp.layer("dense", 8, 3, seed=2))
        try:
            net.learn(X[:-1] if fewer else X, Y[:-1] if fewer else Y, epochs=1, batch_size=BATCH,
                      parallel=DataParallel(timeout=30))
            messages[what] = "no error"
        except DistributedError as exc:
            messages[what] = str(exc)
    with open(os.path.join(out, f"setups.rank{rank}.json"), "w") as handle:
        json.dump(messages, handle)


def rank_fails(out, how):
    """Rank 1 stops at its third step (exits, or raises and leaves learn); rank 0 must not hang."""
    from jitbp.distributed import DataParallel, gradients

    X, Y = data()
    mlp().learn(X, Y, epochs=1, batch_size=BATCH, parallel=DataParallel(timeout=200))  # compile first
    parallel = DataParallel(timeout=3)
    if parallel.rank == 1:
        real_step, calls = gradients.GradientSync.step, []

        def failing_step(self, *args):
            calls.append(1)
            if len(calls) == 3:
                if how == "exits":
                    os._exit(3)
                raise RuntimeError("rank 1 fails on its own")
            return real_step(self, *args)

        gradients.GradientSync.step = failing_step
    try:
        mlp().learn(X, Y, epochs=2, batch_size=BATCH, parallel=parallel)
    except Exception as exc:
        with open(os.path.join(out, f"fails.rank{parallel.rank}.txt"), "w") as handle:
            handle.write(f"{type(exc).__name__}: {exc}")
        raise


def dropout_masks(out):
    """A dropout net trained with gradient sync: each rank saves the mask of every step it ran."""
    from jitbp.distributed import DataParallel

    parallel = DataParallel(timeout=200)
    net = jitbp.Sequential(jitbp.layer("dropout", 0.5), jitbp.layer("dense", 5, 3, seed=1))
    engine, masks, forward = net.engine, [], net.engine.forward

    def recording(bufs, inputs, tape=None, run=None):
        output = forward(bufs, inputs, tape, run)
        if tape is not None:
            masks.append(tape[0][2] != 0)  # the dropout call's output, from all-ones inputs
        return output

    engine.forward = recording
    X, Y = np.ones((N_SAMPLES, 5)), data()[1]
    net.learn(X, Y, epochs=2, batch_size=BATCH, shuffle=False, seed=SEED, parallel=parallel)
    np.savez(os.path.join(out, f"dropout.rank{parallel.rank}.npz"), *masks)


def main(scenario, out):
    if scenario == "exact":
        from mpi4py import MPI

        rank = MPI.COMM_WORLD.Get_rank()
        for case in CASES:
            np.savez(os.path.join(out, f"{case}.rank{rank}.npz"), **run_case(case, parallel=True))
    elif scenario == "dropout":
        dropout_masks(out)
    elif scenario == "setups":
        different_setups(out)
    else:
        rank_fails(out, scenario)


if __name__ == "__main__":
    main(*sys.argv[1:])
