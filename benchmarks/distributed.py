"""Data-parallel throughput over MPI on this machine, and a cost model for N nodes.

Run from the repository root: ``python -m benchmarks.distributed`` (``--quick``: one repeat,
no cost model). Every rank runs one thread. Prints samples/s of the 784-256-128-10 MLP
(float32, SGD, MSE) for one ordinary process and for 2 ranks in each sync mode, the
scaling efficiency (2-rank rate / twice the 1-process rate), the CPU model, then the
measured compute time per step of the three models and the node counts at which each
mode stays above 80% efficiency (see docs/distributed.md).
"""
import os

for _name in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"  # before numpy and numba start their thread pools

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import jitbp  # noqa: E402

from .benchmarks import common  # noqa: E402
from .benchmarks.mpi_throughput import measure  # noqa: E402

MODES = (("gradients", 1), ("weights", 1), ("weights", 16))
#: (name, bandwidth in bytes/s, per-message latency in s) of typical cluster networks.
NETWORKS = (("1 GbE", 125e6, 50e-6), ("10 GbE", 1.25e9, 20e-6), ("25 GbE", 3.125e9, 10e-6),
            ("100 Gb/s InfiniBand", 12.5e9, 2e-6))
NODE_COUNTS = tuple(2 ** k for k in range(1, 11))
TARGET_EFFICIENCY = 0.8


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return "unknown CPU"


def throughput(repeats):
    rows = []
    for batch in (32, 1024):
        single = measure(1, batch, None, repeats=repeats)
        rows.append((batch, "1 process (no MPI)", single, None))
        for sync, every in MODES:
            rate = measure(2, batch, sync, every, repeats=repeats)
            label = f"2 ranks, sync={sync}" + (f", every={every}" if sync == "weights" else "")
            rows.append((batch, label, rate, rate / (2 * single)))
    return rows


def step_seconds(net, X, Y, loss, batch, steps):
    """Best time of one training step (SGD), compilation excluded."""
    optimizer = jitbp.SGD(lr=1e-3)
    net.learn(X[:batch], Y[:batch], loss, optimizer, epochs=1, batch_size=batch)
    best = float("inf")
    for _ in range(steps):
        start = time.perf_counter()
        net.learn(X[:batch], Y[:batch], loss, optimizer, epochs=1, batch_size=batch)
        best = min(best, time.perf_counter() - start)
    return best


def mnist1d_cnn():
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "mnist1d_models.py")
    spec = importlib.util.spec_from_file_location("mnist1d_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build("cnn")


def models(mlp_rates):
    """``(name, parameters, bytes per parameter, per-node batch, measured step seconds)``."""
    rows = [("MLP 784-256-128-10", 32), ("MLP 784-256-128-10", 1024)]
    mlp_params = sum(p.size for p in common.mlp().params.values())
    out = [(name, mlp_params, 4, batch, batch / mlp_rates[batch]) for name, batch in rows]
    rng = np.random.default_rng(0)
    cnn = mnist1d_cnn()
    X, y = rng.random((100, 1, 40), dtype=np.float32), rng.integers(0, 10, 100)
    out.append(("MNIST-1D CNN", sum(p.size for p in cnn.params.values()), 4, 100,
                step_seconds(cnn, X, y, "cross_entropy", 100, 20)))
    big = jitbp.Sequential(*[jitbp.layer("dense", 4096, 4096, seed=k, dtype=np.float32) for k in range(4)],
                           dtype=np.float32)
    X = rng.random((32, 4096), dtype=np.float32)
    out.append(("MLP 4 x 4096^2", sum(p.size for p in big.params.values()), 4, 32,
                step_seconds(big, X, X, "mse", 32, 2)))
    return out


def allreduce_seconds(nodes, nbytes, bandwidth, latency):
    """Ring all-reduce: 2(N-1) messages, each rank sending and receiving 2(N-1)/N of the buffer."""
    return 2 * (nodes - 1) * latency + 2 * (nodes - 1) / nodes * nbytes / bandwidth


def efficiency(compute, nodes, nbytes, network, every=1):
    """Per-node batch fixed: compute / (compute + all-reduce per step), no overlap."""
    _, bandwidth, latency = network
    return compute / (compute + allreduce_seconds(nodes, nbytes, bandwidth, latency) / every)


def max_nodes(compute, nbytes, network, every):
    fit = [n for n in NODE_COUNTS if efficiency(compute, n, nbytes, network, every) >= TARGET_EFFICIENCY]
    if not fit:
        return "none"
    return f">= {fit[-1]}" if fit[-1] == NODE_COUNTS[-1] else str(fit[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one repeat and no cost model: a smoke run")
    args = parser.parse_args(argv)
    rows = throughput(1 if args.quick else 3)
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; one thread per rank; jitbp {jitbp.__version__}")
    print(f"{'batch':>6}  {'run':<32} {'samples/s':>10} {'efficiency':>10}")
    for batch, label, rate, eff in rows:
        print(f"{batch:>6}  {label:<32} {rate:>10,.0f} {'' if eff is None else f'{eff:.0%}':>10}")
    if args.quick:
        return
    rates = {batch: rate for batch, label, rate, _ in rows if label.startswith("1 process")}
    print("\nmeasured compute per step on one core (SGD, float32; the MLP's from the 1-process rates above):")
    table = models(rates)
    for name, params, nbytes, batch, seconds in table:
        print(f"  {name:<20} {params:>11,} parameters, batch {batch:>5}: {seconds * 1e3:9.2f} ms")
    print(f"\nlargest node count (of {NODE_COUNTS[0]}..{NODE_COUNTS[-1]}) above {TARGET_EFFICIENCY:.0%} efficiency, "
          "per-node batch fixed, SGD (Adam triples sync=weights' bytes):\n")
    print("| model | batch per node | mode | " + " | ".join(n[0] for n in NETWORKS) + " |")
    print("|---|---|---|" + "---|" * len(NETWORKS))
    for name, params, nbytes, batch, seconds in table:
        for sync, every in (("gradients", 1), ("weights", 1), ("weights", 16)):
            label = "gradients / weights every=1" if every == 1 else f"weights every={every}"
            if sync == "weights" and every == 1:
                continue  # with SGD it moves the same bytes per step as sync=gradients
            cells = [max_nodes(seconds, params * nbytes, network, every) for network in NETWORKS]
            print(f"| {name} | {batch} | {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
