"""Training throughput over MPI ranks (one thread each), measured in fresh processes.

``measure`` launches ``mpiexec -n R python -m benchmarks.benchmarks.mpi_throughput ...``;
rank 0 of that job prints one JSON line: samples per second of the whole job.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from . import common

#: Samples per timed epoch for each batch size: a few hundred milliseconds of work.
SAMPLES = {32: 4096, 1024: 16384}
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                     "MKL_NUM_THREADS")}


def measure(ranks, batch, sync, every=1, repeats=3, timeout=600):
    """Samples/s of ``ranks`` ranks training the 784-256-128-10 MLP (float32, SGD, MSE) at global
    batch ``batch``; ``sync=None`` is one ordinary process (no MPI)."""
    from jitbp.distributed.launch import find_mpiexec

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    command = [sys.executable, "-m", "benchmarks.benchmarks.mpi_throughput", "--batch", str(batch),
               "--sync", str(sync), "--every", str(every), "--repeats", str(repeats)]
    if sync is not None:
        command = [find_mpiexec(), "-n", str(ranks)] + command
    env = dict(os.environ, **ONE_THREAD)
    out = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    if out.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{out.stdout}{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])["samples_per_second"]


def worker(batch, sync, every, repeats):
    """Run in each rank: warm up (compilation), then the best of ``repeats`` timed epochs."""
    import jitbp

    parallel = None
    if sync != "None":
        from jitbp.distributed import DataParallel

        parallel = DataParallel(sync=sync, every=every)
    X, Y = common.mlp_data(SAMPLES[batch])
    net, optimizer = common.mlp(), jitbp.SGD(lr=0.1)

    def epoch():
        net.learn(X, Y, "mse", optimizer, epochs=1, batch_size=batch, shuffle=False, parallel=parallel)

    best = 0.0
    time.sleep(common.SETTLE_SECONDS)
    epoch()
    for _ in range(repeats):
        if parallel is not None:  # start together: a rank's epoch is as long as the slowest's
            parallel.comm.comm.Barrier()
        start = time.perf_counter()
        epoch()
        best = max(best, len(X) / (time.perf_counter() - start))
    if parallel is None or parallel.root:
        print(json.dumps({"samples_per_second": best}))


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, choices=sorted(SAMPLES), required=True)
    parser.add_argument("--sync", default="None")
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    np.random.seed(0)
    worker(args.batch, args.sync, args.every, args.repeats)


if __name__ == "__main__":
    main()
