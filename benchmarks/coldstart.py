"""Cold-start times: every case in a fresh process on empty caches, next to its floor.

Run from the repository root: ``python -m benchmarks.coldstart`` (``--depths 10`` to skip the
80-layer chain). Each case gets its own empty ``JITBP_CACHE_DIR`` and ``NUMBA_CACHE_DIR``, so
every kernel and captured epoch it uses is compiled, as on a fresh install:

- the README's demo end to end (``python -m jitbp demo``, default ``JITBP_CAPTURE=auto``);
- the first ``learn`` of a chain of N dense 16-16 + tanh layers that has to compile its
  captured epoch before training (``JITBP_CAPTURE=always``, the synchronous compile);
- the time to the end of the first epoch of the same chain under ``auto``: it starts on the
  interpreted engine while the epoch compiles in the background.

Times are wall-clock seconds including the interpreter's start; on a shared machine
compare them with the load average printed first.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from .benchmarks.common import machine_line

DEMO_FLOOR = 10.0
CHAIN_FLOORS = {10: 8.0, 80: 40.0}

CHAIN = """
import sys, numpy as np, jitbp
depth = int(sys.argv[1])
layers = []
for k in range(depth):
    layers += [jitbp.layer("dense", 16, 16, seed=k), jitbp.layer("tanh")]
net = jitbp.Sequential(*layers)
rng = np.random.default_rng(0)
X, Y = rng.normal(size=(256, 16)), rng.normal(size=(256, 16))
net.learn(X, Y, "mse", jitbp.SGD(lr=0.01), epochs=1, batch_size=4)  # 64 steps: captured
"""


def timed(argv, capture):
    """Seconds ``argv`` takes on empty caches; background compiles it leaves are ended."""
    cache = tempfile.mkdtemp(prefix="jitbp-coldstart-")
    env = dict(os.environ, JITBP_CACHE_DIR=os.path.join(cache, "jitbp"), JITBP_QUIET="1",
               NUMBA_CACHE_DIR=os.path.join(cache, "numba"), JITBP_CAPTURE=capture)
    try:
        start = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start
    finally:
        end_background_compiles(os.path.join(cache, "jitbp", "captured"))
        shutil.rmtree(cache, ignore_errors=True)


def end_background_compiles(directory):
    """Stop the compiles a case left running (their pids are in the lock files)."""
    if not os.path.isdir(directory):
        return
    for name in os.listdir(directory):
        if name.endswith(".lock"):
            try:
                with open(os.path.join(directory, name)) as handle:
                    os.kill(int(handle.read()), signal.SIGTERM)
            except (OSError, ValueError):
                pass


def row(case, seconds, floor=None):
    verdict = "" if floor is None else f"floor {floor:5.1f} s  {'ok' if seconds <= floor else 'OVER'}"
    print(f"{case:<58} {seconds:7.1f} s   {verdict}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--depths", type=int, nargs="+", default=[10, 80], help="chain depths to time")
    args = parser.parse_args(argv)
    print(machine_line())
    print(f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    row("README demo end to end (python -m jitbp demo)", timed([sys.executable, "-m", "jitbp", "demo"], "auto"),
        DEMO_FLOOR)
    for depth in args.depths:
        chain = [sys.executable, "-c", CHAIN, str(depth)]
        row(f"first learn, {depth}-layer chain, compiling first", timed(chain, "always"), CHAIN_FLOORS.get(depth))
        row(f"first epoch, {depth}-layer chain, background compile", timed(chain, "auto"))


if __name__ == "__main__":
    main()
