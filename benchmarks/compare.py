"""Side-by-side throughput of jitbp and PyTorch eager CPU (2 threads), same weights and batches.

Run from the repository root: ``python -m benchmarks.compare`` (``--quick`` for a smoke run).
Prints ratios (jitbp / PyTorch samples per second, compile excluded), the share of numpy's
float32 GEMM rate reached at batch 1024, peak memory ratios and cold/warm start times.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import textwrap
import time

import numpy as np

import jitbp

from .benchmarks import common


def best_rate(run, samples, repeats):
    """Best samples/s over ``repeats`` timed calls of ``run`` (after one warm-up call)."""
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


def gemm_rate(n=1024, repeats=5):
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = a.copy()
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n ** 3 * repeats / (time.perf_counter() - start)


MEMORY_SNIPPET = textwrap.dedent("""
    import resource, sys, numpy as np
    lib, opt = sys.argv[1], sys.argv[2]
    if lib == "torch":
        import torch
        torch.set_num_threads(2)
    else:
        import jitbp
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    X = np.random.default_rng(0).random((64, 4096), dtype=np.float32)
    if lib == "torch":
        model = torch.nn.Sequential(*[torch.nn.Linear(4096, 4096) for _ in range(4)])
        o = torch.optim.SGD(model.parameters(), lr=1e-3) if opt == "sgd" else torch.optim.Adam(model.parameters())
        for _ in range(2):
            o.zero_grad(); ((model(torch.from_numpy(X)) - torch.from_numpy(X)) ** 2).mean().backward(); o.step()
    else:
        net = jitbp.Sequential(*[jitbp.layer("dense", 4096, 4096, seed=k) for k in range(4)], dtype=np.float32)
        o = jitbp.SGD(lr=1e-3) if opt == "sgd" else jitbp.Adam()
        net.learn(X, X, "mse", o, epochs=2, batch_size=64)
    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
""")


def peak_memory_mib(lib, opt):
    out = subprocess.run([sys.executable, "-c", MEMORY_SNIPPET, lib, opt], capture_output=True,
                         text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


START_SNIPPET = textwrap.dedent("""
    import time; t = time.perf_counter()
    import numpy as np, jitbp
    from benchmarks.benchmarks import common
    net = common.mlp()
    X, Y = common.mlp_data(32)
    net.learn(X, Y, "mse", jitbp.SGD(lr=0.1), epochs=1, batch_size=32)
    print(time.perf_counter() - t)
""")


def start_seconds(cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", START_SNIPPET], capture_output=True, text=True,
                         check=True, env=env)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat: a smoke run")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    import tempfile

    import torch

    repeats = 1 if args.quick else 3
    scale = 8 if args.quick else 1
    rows = []
    Xs, Ys = common.seed_data(n=256 // scale)
    rows.append(throughput_case("2-2-2 sigmoid, online SGD, half_sse, float64", common.seed_net(), Xs, Ys, 1,
                                "half_sse", lambda: jitbp.SGD(lr=0.5),
                                lambda p: torch.optim.SGD(p, lr=0.5), repeats))
    for batch, n in ((1, 2048), (32, 8192), (1024, 16384)):
        X, Y = common.mlp_data(max(n // scale, batch))
        rows.append(throughput_case(f"MLP 784-256-128-10, batch {batch}, SGD, float32", common.mlp(), X, Y,
                                    batch, "mse", lambda: jitbp.SGD(lr=0.1),
                                    lambda p: torch.optim.SGD(p, lr=0.1), repeats))
        if batch == 32:
            rows.append(throughput_case("MLP 784-256-128-10, batch 32, Adam, float32", common.mlp(), X, Y,
                                        batch, "mse", lambda: jitbp.Adam(lr=1e-3),
                                        lambda p: torch.optim.Adam(p, lr=1e-3), repeats))
    gemm = gemm_rate()
    b1024 = next(r for r in rows if "batch 1024" in r["case"])
    gemm_share = b1024["jitbp"] * common.mlp_flops_per_sample() / gemm
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"numpy {np.__version__}, torch {torch.__version__} (2 threads), jitbp {jitbp.__version__}")
    print(f"{'case':<50} {'jitbp/s':>12} {'torch/s':>12} {'ratio':>8}")
    for r in rows:
        print(f"{r['case']:<50} {r['jitbp']:>12,.0f} {r['torch']:>12,.0f} {r['ratio']:>7.2f}x")
    print(f"batch 1024 reaches {gemm_share:.0%} of numpy's float32 GEMM rate ({gemm / 1e9:.0f} GFLOP/s)")
    result = {"rows": rows, "gemm_share": gemm_share}
    if not args.quick:
        for opt in ("sgd", "adam"):
            mine, theirs = peak_memory_mib("jitbp", opt), peak_memory_mib("torch", opt)
            result[f"peakmem_{opt}"] = mine / theirs
            print(f"peak memory above import, 4 x 4096x4096 dense, {opt}: jitbp {mine:.0f} MiB, "
                  f"torch {theirs:.0f} MiB, ratio {mine / theirs:.2f}x")
        with tempfile.TemporaryDirectory() as cache:
            cold, warm = start_seconds(cache), start_seconds(cache)
        result.update(cold_start_s=cold, warm_start_s=warm)
        print(f"process start + first training step: empty Numba cache {cold:.2f} s, warm cache {warm:.2f} s")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=1)
    return result


if __name__ == "__main__":
    main()
