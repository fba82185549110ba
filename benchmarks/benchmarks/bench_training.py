"""Training throughput and memory (asv). Kernels compile in setup, so timings exclude JIT."""
import numpy as np

import jitbp

from . import common

OPTIMIZERS = {"sgd": lambda: jitbp.SGD(lr=0.1), "adam": lambda: jitbp.Adam(lr=1e-3)}


class SeedNetwork:
    """The 2-2-2 sigmoid network of the seeds, trained online (half sum of squares, float64)."""

    def setup(self):
        self.net = common.seed_net()
        self.X, self.Y = common.seed_data(256)
        self.optimizer = jitbp.SGD(lr=0.5)
        self.time_online_epoch()

    def time_online_epoch(self):
        self.net.learn(self.X, self.Y, "half_sse", self.optimizer, epochs=1, batch_size=1, shuffle=False)

    def peakmem_online_epoch(self):
        self.time_online_epoch()


class MLP:
    """784-256-128-10 sigmoid MLP, MSE, float32: one epoch of 2048 samples."""

    params = ([1, 32, 1024], list(OPTIMIZERS))
    param_names = ["batch", "optimizer"]

    def setup(self, batch, optimizer):
        if batch == 1024 and optimizer == "adam":
            raise NotImplementedError  # covered by batch 32; keeps the suite short
        self.net = common.mlp()
        self.X, self.Y = common.mlp_data(2048 if batch > 1 else 256)
        self.optimizer = OPTIMIZERS[optimizer]()
        self.batch = batch
        self.time_epoch(batch, optimizer)

    def time_epoch(self, batch, optimizer):
        self.net.learn(self.X, self.Y, "mse", self.optimizer, epochs=1, batch_size=self.batch, shuffle=False)

    def peakmem_epoch(self, batch, optimizer):
        self.time_epoch(batch, optimizer)
