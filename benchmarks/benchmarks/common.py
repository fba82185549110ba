"""Workloads shared by the asv suite and the side-by-side comparison script."""
import os
import subprocess
import sys
import textwrap
import time

import numpy as np

import jitbp

# Steady-state timings measure the captured epoch: compiled synchronously on the warm-up
# call, never the interpreted fallback that runs while a background compile is under way.
os.environ.setdefault("JITBP_CAPTURE", "always")

MLP_SIZES = (784, 256, 128, 10)
SEED_W = ([[0.1, -0.2], [0.3, 0.55]], [0.01, -0.02], [[0.37, 0.9], [-0.22, -0.12]], [0.31, 0.27])


def cpu_model():
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` knows."""
    import platform

    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line():
    """CPU model, core count and the OpenBLAS tuning variables, which change GEMM speed."""
    blas = ", ".join(f"{name}={os.environ[name]!r}" if name in os.environ else f"{name} unset"
                     for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"))
    return f"machine: {cpu_model()}, {os.cpu_count()} cores; {blas}"


def seed_net():
    """The 2-2-2 sigmoid network of seed article 002."""
    W1, b1, W2, b2 = SEED_W
    return jitbp.Sequential(jitbp.layer("dense", 2, 2, W=W1, b=b1), jitbp.layer("sigmoid"),
                            jitbp.layer("dense", 2, 2, W=W2, b=b2), jitbp.layer("sigmoid"))


def seed_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (n, 2)), rng.uniform(0, 1, (n, 2))


def mlp(dtype=np.float32, sizes=MLP_SIZES, seed=0):
    """784-256-128-10 sigmoid MLP."""
    layers = []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [jitbp.layer("dense", n_in, n_out, seed=seed + k, dtype=dtype), jitbp.layer("sigmoid")]
    return jitbp.Sequential(*layers, dtype=dtype)


def mlp_data(n, dtype=np.float32, seed=0, sizes=MLP_SIZES):
    rng = np.random.default_rng(seed)
    return (rng.uniform(0, 1, (n, sizes[0])).astype(dtype),
            rng.uniform(0, 1, (n, sizes[-1])).astype(dtype))


def mlp_flops_per_sample(sizes=MLP_SIZES):
    """Multiply-adds x2 of one training step per sample: forward, weight gradient, input delta
    (the first layer needs no input delta)."""
    total = 0
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        total += 2 * n_in * n_out * (2 if k == 0 else 3)
    return total


#: Seconds to idle before a measurement: thread pools a previous measurement used
#: (OpenMP's, OpenBLAS's) keep spinning for a while and would compete for the 2 cores.
SETTLE_SECONDS = 0.3


def best_rate(run, samples, repeats):
    """Best samples/s over ``repeats`` timed calls of ``run`` (after settling and one warm-up call)."""
    time.sleep(SETTLE_SECONDS)
    run()
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = max(best, samples / (time.perf_counter() - start))
    return best


def torch_mirror(net, dtype):
    import torch

    torch.set_num_threads(2)
    modules = []
    for node in net.calls:
        layer = node.layer
        if layer.kind == "dense":
            lin = torch.nn.Linear(layer.n_in, layer.n_out).to(dtype)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(layer.params["W"]))
                lin.bias.copy_(torch.from_numpy(layer.params["b"]))
            modules.append(lin)
        else:
            modules.append(torch.nn.Sigmoid())
    return torch.nn.Sequential(*modules)


def torch_epoch(model, X, Y, batch, optimizer, loss):
    import torch

    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    for start in range(0, len(X), batch):
        optimizer.zero_grad()
        out = model(Xt[start:start + batch])
        err = out - Yt[start:start + batch]
        value = 0.5 * (err * err).sum() if loss == "half_sse" else (err * err).mean()
        value.backward()
        optimizer.step()


def throughput_case(name, net, X, Y, batch, loss, make_opt, torch_opt, repeats):
    import torch

    dtype = torch.float32 if X.dtype == np.float32 else torch.float64
    model = torch_mirror(net, dtype)
    opt_t = torch_opt(model.parameters())
    opt_j = make_opt()
    jit = best_rate(lambda: net.learn(X, Y, loss, opt_j, epochs=1, batch_size=batch, shuffle=False),
                    len(X), repeats)
    ref = best_rate(lambda: torch_epoch(model, X, Y, batch, opt_t, loss), len(X), repeats)
    return {"case": name, "jitbp": jit, "torch": ref, "ratio": jit / ref}


MEMORY_SNIPPET = textwrap.dedent("""
    import sys, numpy as np
    def status_mib(field):  # VmRSS: now; VmHWM: peak
        with open("/proc/self/status") as handle:
            line = next(line for line in handle if line.startswith(field + ":"))
        return int(line.split()[1]) / 1024
    lib, opt = sys.argv[1], sys.argv[2]
    if lib == "torch":
        import torch
        torch.set_num_threads(2)
    else:
        import jitbp
    base = status_mib("VmRSS")
    X = np.random.default_rng(0).random((64, 4096), dtype=np.float32)
    if opt == "runtime":  # a 64-64 layer: the same kernels and BLAS as the big model, no size
        X = X[:, :64]
        net = jitbp.Sequential(jitbp.layer("dense", 64, 64, dtype=np.float32), dtype=np.float32)
        net.learn(X, X, "mse", jitbp.SGD(lr=1e-3), epochs=2, batch_size=64)
    elif lib == "torch":
        model = torch.nn.Sequential(*[torch.nn.Linear(4096, 4096) for _ in range(4)])
        o = torch.optim.SGD(model.parameters(), lr=1e-3) if opt == "sgd" else torch.optim.Adam(model.parameters())
        for _ in range(2):
            o.zero_grad(); ((model(torch.from_numpy(X)) - torch.from_numpy(X)) ** 2).mean().backward(); o.step()
    else:
        net = jitbp.Sequential(*[jitbp.layer("dense", 4096, 4096, seed=k, dtype=np.float32) for k in range(4)],
                               dtype=np.float32)
        o = jitbp.SGD(lr=1e-3) if opt == "sgd" else jitbp.Adam()
        net.learn(X, X, "mse", o, epochs=2, batch_size=64)
    print(status_mib("VmHWM") - base)
""")


def peak_memory_mib(lib, opt):
    """Peak RSS above import (MiB) of a fresh process training 4 dense 4096x4096 layers
    with ``opt`` ("sgd", "adam"); ``"runtime"`` (jitbp only) trains one 64x64 layer instead."""
    out = subprocess.run([sys.executable, "-c", MEMORY_SNIPPET, lib, opt], capture_output=True,
                         text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


START_SNIPPET = textwrap.dedent("""
    import time; t = time.perf_counter()
    import numpy as np, jitbp
    sizes = (784, 256, 128, 10)
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [jitbp.layer("dense", n_in, n_out, seed=0), jitbp.layer("sigmoid")]
    net = jitbp.Sequential(*layers, dtype=np.float32)
    X = np.ones((32, 784), np.float32); Y = np.zeros((32, 10), np.float32)
    net.learn(X, Y, "mse", jitbp.SGD(lr=0.1), epochs=1, batch_size=32)
    print(time.perf_counter() - t)
""")


def start_seconds(cache_dir):
    """Seconds for a fresh process to import jitbp and train one MLP step, with the
    Numba and jitbp caches in ``cache_dir`` (empty: a cold start)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, JITBP_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", START_SNIPPET], capture_output=True, text=True,
                         check=True, env=env)
    return float(out.stdout.strip().splitlines()[-1])


def gemm_rate(n=1024, repeats=5):
    """numpy's float32 GEMM rate (FLOP/s) on n x n matrices, best of ``repeats``."""
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = a.copy()
    return best_rate(lambda: a @ b, 2 * n ** 3, repeats)


def step_gemms(batch=1024, sizes=MLP_SIZES, seed=0):
    """The GEMMs of one MLP training step (forward, weight gradient, input delta but the
    first layer's), as ``(out, a, b)`` float32 triples for ``out = a @ b``."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    gemms = []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        x, W, dy = (rng.random(shape, dtype=f32) for shape in ((batch, n_in), (n_out, n_in), (batch, n_out)))
        gemms += [(np.empty((batch, n_out), f32), x, W.T), (np.empty((n_out, n_in), f32), dy.T, x)]
        if k:
            gemms.append((np.empty((batch, n_in), f32), dy, W))
    return gemms


def gemm_seconds(gemms, repeats=20):
    """Best time of all ``gemms`` through Numba's ``np.dot`` (the BLAS jitbp's kernels call)
    and through ``torch.mm``."""
    import torch
    from numba import njit

    @njit
    def numba_dot(out, a, b):
        np.dot(a, b, out)

    tensors = [tuple(torch.from_numpy(m) for m in gemm) for gemm in gemms]
    ours = 1 / best_rate(lambda: [numba_dot(out, a, b) for out, a, b in gemms], 1, repeats)
    theirs = 1 / best_rate(lambda: [torch.mm(a, b, out=out) for out, a, b in tensors], 1, repeats)
    return ours, theirs
