"""``sync="gradients"``: every step all-reduces the slices' gradients, then applies the optimizer.

Each rank runs the forward pass and the unwinding on its slice of the global batch
with the accumulating rule (as :meth:`jitbp.Network.gradients` does), its output
delta scaled by its share of the batch for mean losses, so that the sum over ranks
is the gradient of the combined batch. Gradients land in one flat buffer, laid out
in the order the unwinding finishes the layers and cut into buckets; a bucket's
all-reduce starts as soon as its last layer is unwound (as DDP and Horovod fuse
small tensors). The optimizer then applies the summed gradient with
:func:`jitbp.kernels.apply_gradient`, the rule the fused kernels apply, so the
weights follow one process training on the combined batch up to rounding.
"""
import math

import numpy as np

from .. import kernels
from ..engine import Run, call_seeds, steps_taken
from ..losses import OUT_OF_DOMAIN
from .slices import batch_rows, my_slice

#: Bucket size; DDP's default (25 MiB) keeps each all-reduce long enough to reach bandwidth.
BUCKET_BYTES = 25 * 2**20


class GradientBuckets:
    """The updater for :meth:`Engine.backward`: accumulates into buckets, all-reduces each when done."""

    def __init__(self, comm, net, bucket_bytes):
        self.comm = comm
        self.net = net
        layers = [layer for layer in net.layers if layer.params]
        # The unwinding finishes a layer at its first call, so later-called layers finish first.
        layers.sort(key=lambda layer: -net.index[id(net.first_call_of(layer))])
        self.flat = np.zeros(sum(p.size for layer in layers for p in layer.params.values()), net.dtype)
        self.grads, self.bucket_of, bounds = {}, {}, [0]
        offset = 0
        for layer in layers:
            if offset > bounds[-1] and (offset - bounds[-1]) * self.flat.itemsize >= bucket_bytes:
                bounds.append(offset)
            self.bucket_of[id(layer)] = len(bounds) - 1
            views = []
            for p in layer.params.values():
                views.append(self.flat[offset:offset + p.size].reshape(p.shape))
                offset += p.size
            self.grads[id(layer)] = views
        bounds.append(offset)
        self.buckets = [self.flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        self.layers_in = [sum(1 for layer in layers if self.bucket_of[id(layer)] == k) for k in range(len(self.buckets))]
        self.layers = layers

    def start_step(self):
        self.flat[...] = 0.0
        self.waiting = list(self.layers_in)
        self.requests = []

    def before(self, node):
        grads = self.grads.get(id(node.layer), ())
        return kernels.ACCUMULATE, kernels.NO_HYPER, tuple(g.reshape(1, -1) for g in grads)

    def after(self, node):
        layer = node.layer
        if layer.params and self.net.first_call_of(layer) is node:
            k = self.bucket_of[id(layer)]
            self.waiting[k] -= 1
            if self.waiting[k] == 0:
                self.requests.append(self.comm.start_allreduce(self.buckets[k]))
        self.comm.progress(self.requests)

    def start_remaining(self):
        """All-reduce the buckets the unwinding did not finish (a rank with an empty slice)."""
        for k, left in enumerate(self.waiting):
            if left:
                self.waiting[k] = 0
                self.requests.append(self.comm.start_allreduce(self.buckets[k]))


class GradientSync:
    """Runs epochs of exact data-parallel steps for one ``learn`` call."""

    def __init__(self, comm, net, optimizer, loss, seed=0, bucket_bytes=BUCKET_BYTES):
        self.comm = comm
        self.net = net
        self.optimizer = optimizer
        self.loss = loss
        #: The calls' random keys from the learn seed, and the optimizer steps applied so far.
        self.seeds = call_seeds(net, seed)
        self.steps_done = steps_taken(net, optimizer)
        self.buckets = GradientBuckets(comm, net, bucket_bytes)
        #: The step's loss share and how many ranks saw outputs outside the loss's domain.
        self.stats = np.zeros(2)

    def epoch(self, inputs, target, order, size):
        """One epoch over the global batches of ``order``; as :meth:`Engine.train_epoch` returns."""
        n = len(target)
        total = 0.0
        for k, rows in enumerate(batch_rows(order, n, size)):
            value = self.step(inputs, target, rows)
            if not math.isfinite(value):
                return total, k, value
            total += value * len(rows) / n if self.loss.mean else value
        return total, None, None

    def step(self, inputs, target, rows):
        """Train on one global batch; returns its loss (the batch is left unapplied if not finite)."""
        engine, loss, buckets = self.net.engine, self.loss, self.buckets
        mine = my_slice(rows, self.comm.rank, self.comm.size)
        buckets.start_step()
        self.stats[...] = 0.0
        if len(mine):
            bufs = engine.buffers(len(mine))
            tape = []
            run = Run(True, np.int64(self.steps_done + 1), self.seeds)
            output = engine.forward(bufs, [x[mine] for x in inputs], tape, run)
            value = engine.loss(bufs, output, target[mine], loss)
            share = len(mine) / len(rows) if loss.mean else 1.0
            self.stats[:] = (value * share, value == OUT_OF_DOMAIN)
            if math.isfinite(value):
                if share != 1.0:
                    engine.scale_output_delta(bufs, share)
                engine.backward(bufs, tape, buckets)
        buckets.start_remaining()
        buckets.requests.append(self.comm.start_allreduce(self.stats))
        self.comm.wait(buckets.requests, "summing a step's gradients")
        if self.stats[1]:
            return OUT_OF_DOMAIN
        value = float(self.stats[0])
        if math.isfinite(value):
            self.apply()
            self.steps_done += 1
        return value

    def apply(self):
        optimizer = self.optimizer
        for layer in self.buckets.layers:
            params = tuple(layer.params.values())
            hyper, states = optimizer.prepare(params)
            for param, grad, state in zip(params, self.buckets.grads[id(layer)], states):
                kernels.apply_gradient(optimizer.rule, param, grad, state, hyper)
