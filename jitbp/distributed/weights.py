"""``sync="weights"`` (local SGD): each rank trains its slices with the fused kernels and the
ranks combine weights and optimizer state every ``every`` steps and at the end of each epoch.

Combining, with ``w0`` the last synchronised weights and rank r's share ``c_r`` of the
rows trained since: ``w = w0 + sum_r c_r (w_r - w0)``. For mean losses ``c_r`` is the
rank's fraction of the rows (a weighted average), for sum losses 1 (the ranks' steps
add up, as the combined batch's gradient does). Either way one plain-SGD step per
synchronisation is exactly a step on the combined batch. Optimizer slots are always
averaged by row share (a convex combination, so Adam's second moments stay positive).
"""
import math

import numpy as np

from .slices import bounds


class WeightSync:
    """Runs epochs of local-SGD blocks for one ``learn`` call."""

    def __init__(self, comm, net, optimizer, loss, every, capture, seed=0):
        self.comm = comm
        self.net = net
        self.optimizer = optimizer
        self.loss = loss
        self.every = every
        self.capture = capture
        self.updates = net.engine.optimizer_updates(optimizer, seed)
        self.params = list(net.params.values())
        slots = [optimizer.state_of(p)[0] for p in self.params]  # created by broadcast_start
        sizes = [p.size for p in self.params] + [s.size for s in slots]
        self.split = np.cumsum(sizes)[:-1]
        self.n_params = sum(p.size for p in self.params)
        self.synced = np.empty(sum(sizes), net.dtype)
        self.delta = np.empty_like(self.synced)
        self.pack(self.synced)
        self.steps = self.step_counts()
        #: Rows and loss share trained since the last sync, and whether a batch failed.
        self.stats = np.zeros(3)

    def arrays(self):
        # Slots are looked up again: restoring a model or state may have replaced them.
        return self.params + [self.optimizer.state_of(p)[0] for p in self.params]

    def pack(self, out):
        for part, array in zip(np.split(out, self.split), self.arrays()):
            part[...] = array.reshape(-1)

    def unpack(self, flat):
        for part, array in zip(np.split(flat, self.split), self.arrays()):
            array.reshape(-1)[...] = part

    def step_counts(self):
        return [self.optimizer.state_of(p)[1] for p in self.params]

    def set_steps(self, steps):
        for param, now, wanted in zip(self.params, self.step_counts(), steps):
            self.optimizer.advance([param], wanted - now)

    def epoch(self, inputs, target, order, size):
        """One epoch, as :meth:`Engine.train_epoch` returns it. After a failed batch the
        state is that of the last synchronisation, before batch ``self.restored_before``."""
        n = len(target)
        batches = -(-n // size)
        total = 0.0
        for first in range(0, batches, self.every):
            last = min(first + self.every, batches)
            value, failed = self.block(inputs, target, order, size, first, last, n)
            if failed is not None:
                self.restored_before = first
                return total, failed, value
            total += value
        return total, None, None

    def block(self, inputs, target, order, size, first, last, n):
        """Train batches ``first``..``last - 1`` locally, then combine. Returns the block's
        share of the epoch loss and ``None``, or, when a batch failed on some rank, the
        first failing batch's loss and index (every rank then back at the last sync)."""
        rank, ranks = self.comm.rank, self.comm.size
        engine, loss = self.net.engine, self.loss
        rows_trained, share, failed_at, bad_value = 0, 0.0, math.inf, None
        full_stop = min(last, n // size) * size
        runs = []
        if full_stop > first * size:  # the block's full batches: one slice size
            start, stop = bounds(size, rank, ranks)
            rows = order[first * size:full_stop].reshape(-1, size)[:, start:stop]
            runs.append((first, rows.reshape(-1), stop - start))
        if last * size > n:  # the epoch's partial last batch
            part = order[(last - 1) * size:n]
            start, stop = bounds(len(part), rank, ranks)
            runs.append((last - 1, part[start:stop], stop - start))
        for batch0, rows, local in runs:
            if not len(rows):
                continue
            xs, t = [x[rows] for x in inputs], target[rows]
            part_total, failed, value = engine.train_epoch(xs, t, None, local, loss, self.updates, self.capture)
            if failed is not None:
                failed_at, bad_value = batch0 + failed, value
                break
            rows_trained += len(rows)
            share += part_total * len(rows) / n if loss.mean else part_total
        self.stats[:] = (rows_trained, share, failed_at != math.inf)
        self.comm.allreduce(self.stats, "combining a block's losses")
        if self.stats[2]:
            self.unpack(self.synced)
            self.set_steps(self.steps)
            reports = self.comm.allgather((failed_at, bad_value))
            failed_at, bad_value = min(reports, key=lambda report: report[0])
            return bad_value, int(failed_at)
        self.combine(rows_trained / self.stats[0])
        self.steps = [s + last - first for s in self.steps]
        self.set_steps(self.steps)
        return float(self.stats[1]), None

    def combine(self, row_share):
        """Replace every rank's weights and slots by their combination (see the module docstring)."""
        delta = self.delta
        self.pack(delta)
        delta -= self.synced
        delta[self.n_params:] *= row_share
        delta[:self.n_params] *= row_share if self.loss.mean else 1.0
        self.comm.allreduce(delta, "combining the ranks' weights")
        self.synced += delta
        self.unpack(self.synced)
