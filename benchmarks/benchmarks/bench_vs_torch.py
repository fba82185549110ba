"""jitbp / PyTorch eager CPU throughput and memory ratios, measured side by side (asv track_)."""
import numpy as np

import jitbp

from . import common


def _torch():
    try:
        import torch
    except ImportError:
        raise NotImplementedError("PyTorch is not installed: pip install 'jitbp[bench]'") from None
    return torch


class ThroughputRatio:
    """Samples per second of jitbp divided by PyTorch's on the same weights and batches."""

    params = ["seed_online", "mlp_b1", "mlp_b32_adam", "mlp_b1024"]
    param_names = ["case"]
    unit = "ratio"

    def setup(self, case):
        torch = _torch()
        if case == "seed_online":
            X, Y = common.seed_data(256)
            self.args = (common.seed_net(), X, Y, 1, "half_sse", lambda: jitbp.SGD(lr=0.5),
                         lambda p: torch.optim.SGD(p, lr=0.5))
        else:
            batch = {"mlp_b1": 1, "mlp_b32_adam": 32, "mlp_b1024": 1024}[case]
            X, Y = common.mlp_data(max(1024, 4 * batch) if batch > 1 else 512)
            adam = case.endswith("adam")
            self.args = (common.mlp(), X, Y, batch, "mse",
                         (lambda: jitbp.Adam(lr=1e-3)) if adam else (lambda: jitbp.SGD(lr=0.1)),
                         (lambda p: torch.optim.Adam(p, lr=1e-3)) if adam else (lambda p: torch.optim.SGD(p, lr=0.1)))

    def track_ratio(self, case):
        return common.throughput_case(case, *self.args, repeats=2)["ratio"]


class PeakMemoryRatio:
    """Peak RSS above import, 4 dense 4096x4096 layers, jitbp / PyTorch (each in a fresh process)."""

    params = ["sgd", "adam"]
    param_names = ["optimizer"]
    unit = "ratio"
    timeout = 300

    def setup(self, optimizer):
        _torch()

    def track_ratio(self, optimizer):
        return common.peak_memory_mib("jitbp", optimizer) / common.peak_memory_mib("torch", optimizer)


def track_gemm_share_batch_1024():
    """jitbp's FLOP rate at batch 1024 as a share of numpy's float32 GEMM rate."""
    net = common.mlp()
    X, Y = common.mlp_data(8192)
    rate = common.best_rate(lambda: net.learn(X, Y, "mse", jitbp.SGD(lr=0.1), epochs=1, batch_size=1024,
                                              shuffle=False), len(X), 2)
    return rate * common.mlp_flops_per_sample() / common.gemm_rate()


track_gemm_share_batch_1024.unit = "share"
