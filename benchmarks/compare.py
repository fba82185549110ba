"""Side-by-side throughput of jitbp and PyTorch eager CPU (2 threads), same weights and batches.

Run from the repository root: ``python -m benchmarks.compare`` (``--quick`` for a smoke run).
Prints ratios (jitbp / PyTorch samples per second, compile excluded), the share of numpy's
float32 GEMM rate reached at batch 1024, peak memory ratios and cold/warm start times.
"""
import argparse
import json
import tempfile

import numpy as np

import jitbp

from .benchmarks import common
from .benchmarks.common import (gemm_rate, gemm_seconds, peak_memory_mib, start_seconds, step_gemms,
                                throughput_case)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat: a smoke run")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    import torch

    repeats = 1 if args.quick else 3
    scale = 8 if args.quick else 1
    rows = []
    for n in (256, 4096):
        Xs, Ys = common.seed_data(n=n // scale)
        rows.append(throughput_case(f"2-2-2 sigmoid, online SGD, half_sse, float64, {n} per call",
                                    common.seed_net(), Xs, Ys, 1, "half_sse", lambda: jitbp.SGD(lr=0.5),
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
    print(common.machine_line())
    print(f"numpy {np.__version__}, torch {torch.__version__} (2 threads), jitbp {jitbp.__version__}")
    print(f"{'case':<64} {'jitbp/s':>10} {'torch/s':>10} {'ratio':>8}")
    for r in rows:
        print(f"{r['case']:<64} {r['jitbp']:>10,.0f} {r['torch']:>10,.0f} {r['ratio']:>7.2f}x")
    print(f"batch 1024 reaches {gemm_share:.0%} of numpy's float32 GEMM rate ({gemm / 1e9:.0f} GFLOP/s)")
    ours, theirs = gemm_seconds(step_gemms(), repeats=3 if args.quick else 20)
    torch_step = 1024 / b1024["torch"]
    share_cap = 1024 * common.mlp_flops_per_sample() / ours / gemm
    print(f"  its 8 GEMMs alone take {ours * 1e3:.2f} ms through the BLAS Numba calls, {theirs * 1e3:.2f} ms in "
          f"torch.mm; PyTorch's whole step takes {torch_step * 1e3:.2f} ms: a step of nothing but these GEMMs "
          f"would reach {torch_step / ours:.2f}x PyTorch and {share_cap:.0%} of numpy's rate")
    result = {"rows": rows, "gemm_share": gemm_share, "gemm_cap_ratio": torch_step / ours,
              "gemm_cap_share": share_cap}
    if not args.quick:
        for opt in ("sgd", "adam"):
            mine, theirs = peak_memory_mib("jitbp", opt), peak_memory_mib("torch", opt)
            result[f"peakmem_{opt}"] = mine / theirs
            print(f"peak memory above import, 4 x 4096x4096 dense, {opt}: jitbp {mine:.0f} MiB, "
                  f"torch {theirs:.0f} MiB, ratio {mine / theirs:.2f}x")
        runtime = result["peakmem_runtime_mib"] = peak_memory_mib("jitbp", "runtime")
        print(f"  of jitbp's, {runtime:.0f} MiB is Numba's runtime and the loaded kernels: one 64x64 layer "
              f"trained the same way costs as much; torch loads its own at import")
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
