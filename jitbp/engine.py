"""The tape engine: forward pass pushes each layer call, backward pops and unwinds it.

Weight updates are fused into the layers' derivative kernels, or (gradient tier)
applied by the engine right after the layer's backward from a per-layer gradient
scratch. An *updater* tells the engine which rule each call applies: the
optimizer's (training), or ``ACCUMULATE`` into gradient arrays (``gradients()``
and shared parameters). Contract-2 kernels get a :class:`~jitbp.context.Context`
built per call from a :class:`Run` (mode, step, random keys); :mod:`jitbp.tiers`
knows each tier's arguments.
"""
import math
from typing import NamedTuple

import numpy as np

from . import kernels, rng, tiers
from .buffercache import BufferCache
from .capture import CapturedEpoch, capture_mode
from .context import Context
from .culprit import COMPILE_ERRORS, compile_error
from .unwind import backward_plan

#: The step ``gradients()`` runs its training-mode pass at, with run seed GRADIENTS_SEED.
GRADIENTS_STEP, GRADIENTS_SEED = 1, 0


class Run(NamedTuple):
    """What the contexts of one pass share."""

    #: True in learn and gradients(), False in predict and loss.
    training: bool
    #: The optimizer step (1-based) of the batch, 0 in prediction.
    step: np.int64
    #: Each call's random key, in call order (:func:`jitbp.rng.call_seed`).
    seeds: tuple


def call_seeds(net, run_seed):
    """The random key of every call of ``net`` in a run seeded with ``run_seed``."""
    key = run_seed % 2**64
    return tuple(rng.call_seed(key, k) for k in range(len(net.calls)))


def steps_taken(net, optimizer):
    """The most steps ``optimizer`` has applied to any parameter of ``net`` (0 if none)."""
    steps = [optimizer.state_of(p) for layer in net.layers for p in layer.params.values()]
    return max((state[1] for state in steps if state is not None), default=0)


class Buffers:
    """Activations, deltas and workspaces for one batch size, allocated once and reused."""

    def __init__(self, net, batch):
        dtype = net.dtype
        self.batch = batch
        self.values = [np.empty((batch,) + node.shape, dtype) for node in net.calls]
        self.deltas = [np.empty((batch,) + node.shape, dtype) for node in net.calls]
        self.workspaces = [
            tuple(np.empty(shape, dtype) for shape in
                  node.layer.workspace_shapes(batch, [inp.shape for inp in node.inputs]))
            for node in net.calls
        ]
        self._scratch = {}
        #: Packed views of these buffers kept by other runners (the captured epoch).
        self.extra = {}

    def scratch(self, call, slot, shape, dtype):
        """A private delta buffer for input ``slot`` of call ``call``."""
        key = (call, slot)
        if key not in self._scratch:
            self._scratch[key] = np.empty((self.batch,) + shape, dtype)
        return self._scratch[key]


class OptimizerUpdates:
    """Fused optimizer updates; shared layers accumulate and update at their last unwind."""

    def __init__(self, net, optimizer, seed=0):
        self.net = net
        self.optimizer = optimizer
        #: Random keys of the calls in this run, and the training steps taken so far.
        self.seeds = call_seeds(net, seed)
        self.steps_done = steps_taken(net, optimizer)
        # A plugin's rule is not fused into the kernels: every layer goes through a buffer.
        buffered = net.shared_layers if optimizer.fused else [layer for layer in net.layers if layer.params]
        self._grads = {id(layer): [np.zeros_like(p) for p in layer.params.values()] for layer in buffered}
        self._pending = set()

    def shared_grads(self):
        """Gradient arrays of the shared layers, in ``net.shared_layers`` order."""
        return [self._grads[id(layer)] for layer in self.net.shared_layers]

    def before(self, node):
        layer = node.layer
        params = tuple(layer.params.values())
        if not params:
            return kernels.ACCUMULATE, kernels.NO_HYPER, ()
        grads = self._grads.get(id(layer))
        if grads is None:
            hyper, states = self.optimizer.prepare(params)
            return self.optimizer.rule, hyper, states
        if id(layer) not in self._pending:
            self._pending.add(id(layer))
            for grad in grads:
                grad[...] = 0.0
        return kernels.ACCUMULATE, kernels.NO_HYPER, tuple(g.reshape(1, -1) for g in grads)

    def after(self, node):
        layer = node.layer
        if id(layer) not in self._pending or self.net.first_call_of(layer) is not node:
            return
        self._pending.discard(id(layer))
        params = tuple(layer.params.values())
        hyper, states = self.optimizer.prepare(params)
        for param, grad, state in zip(params, self._grads[id(layer)], states):
            self.optimizer.apply_gradient(param, grad, state, hyper)


class GradientCollector:
    """Adds every parameter's gradient into ``grads`` and changes no parameter."""

    def __init__(self, net):
        self.grads = {id(layer): [np.zeros_like(p) for p in layer.params.values()] for layer in net.layers}

    def before(self, node):
        grads = self.grads[id(node.layer)]
        return kernels.ACCUMULATE, kernels.NO_HYPER, tuple(g.reshape(1, -1) for g in grads)

    def after(self, node):
        pass


class Engine:
    """Runs a network's calls on Numba kernels with buffers cached per batch size and thread."""

    MAX_CACHED_BATCHES = 4

    def __init__(self, net):
        self.net = net
        self.plan = backward_plan(net)
        self._buffers = BufferCache(lambda batch: Buffers(net, batch), self.MAX_CACHED_BATCHES)
        self._captured = {}
        self.forms = [tiers.form(node.layer) for node in net.calls]
        self._predict_run = Run(False, np.int64(0), call_seeds(net, GRADIENTS_SEED))
        self._gradients_run = Run(True, np.int64(GRADIENTS_STEP), self._predict_run.seeds)
        #: Gradient scratch of each gradient-tier layer, shaped like its parameters.
        self._scratch_grads = {id(node.layer): tuple(np.empty_like(p) for p in node.layer.params.values())
                       for node, form in zip(net.calls, self.forms) if form == tiers.GRADIENT}

    def buffers(self, batch):
        """This thread's buffers for ``batch`` samples, least recently used evicted first."""
        return self._buffers.get(batch)

    def optimizer_updates(self, optimizer, seed=0):
        """The updater that applies ``optimizer`` in a run whose random keys come from ``seed``."""
        return OptimizerUpdates(self.net, optimizer, seed)

    def train_epoch(self, inputs, target, order, size, loss, updates, capture=False, interrupt=None, lrs=None):
        """One epoch of steps on batches of ``size`` (rows ``order``, or in sequence), batch
        ``k`` at learning rate ``lrs[k]`` when given (a per-step schedule's).

        Returns ``(epoch_loss, None, None)``, or ``(partial, batch_index, value)`` when
        a batch's loss is not finite: that batch is left unapplied, or ``(partial,
        batch_index, None)`` when ``interrupt.pending`` was set before that batch
        (:mod:`jitbp.interrupts`). With ``capture`` the epoch runs as one compiled
        function (:mod:`jitbp.capture`) when it can; under ``JITBP_CAPTURE=auto`` one
        that is not compiled yet is compiled in the background meanwhile.
        """
        if capture and updates.optimizer.fused:
            captured = self.captured(loss)
            result = captured and captured.run(self, inputs, target, order, size, updates, lrs,
                                               wait=capture_mode() != "auto")
            if result is not None:
                updates.steps_done += -(-len(target) // size) if result[1] is None else result[1]
                return result
        n = len(target)
        total = 0.0
        for k, start in enumerate(range(0, n, size)):
            if interrupt is not None and interrupt.pending:
                return total, k, None
            stop = min(start + size, n)
            if lrs is not None:
                updates.optimizer.lr = lrs[k]
            if order is None:
                xs, t = [x[start:stop] for x in inputs], target[start:stop]
            else:
                rows = order[start:stop]
                xs, t = [x[rows] for x in inputs], target[rows]
            bufs = self.buffers(stop - start)
            tape = []
            run = Run(True, np.int64(updates.steps_done + 1), updates.seeds)
            value = self.loss(bufs, self.forward(bufs, xs, tape, run), t, loss)
            if not math.isfinite(value):
                return total, k, value
            self.backward(bufs, tape, updates)
            updates.steps_done += 1
            total += value * (stop - start) / n if loss.mean else value
        return total, None, None

    def gradient_scratch(self, layer):
        """The arrays a gradient-tier ``layer``'s backward writes its gradients into; ``()`` otherwise."""
        return self._scratch_grads.get(id(layer), ())

    def captured(self, loss):
        """The compiled epoch for ``loss`` on this graph, built once; ``None`` if a kernel
        cannot be imported by name."""
        key = (loss.name, "weighted") if loss.packed else loss.name  # a weighted twin has its own epoch
        if key not in self._captured:
            self._captured[key] = CapturedEpoch.build(self.net, loss)
        return self._captured[key]

    def to_host(self, array):
        """``array`` as a NumPy array (the CPU engine's arrays already are)."""
        return array

    def forward(self, bufs, inputs, tape=None, run=None):
        """Run every call; push ``(call, xs, y, ctx)`` on ``tape`` when given. Returns the output.

        ``run`` defaults to prediction without a tape, to ``gradients()``'s fixed
        training step with one.
        """
        net = self.net
        if run is None:
            run = self._predict_run if tape is None else self._gradients_run
        values = {id(node): data for node, data in zip(net.inputs, inputs)}
        for i, node in enumerate(net.calls):
            layer = node.layer
            xs = tuple(values[id(inp)] for inp in node.inputs)
            y = bufs.values[i]
            ws = bufs.workspaces[i]
            ctx = self.context(i, run, ws)
            try:
                tiers.forward(self.forms[i], layer.forward_kernel, xs=xs, params=tuple(layer.params.values()), y=y,
                              ws=ws, ctx=ctx)
            except COMPILE_ERRORS as error:  # first call: the kernel does not compile for these arguments
                raise compile_error(layer, "forward_kernel", error) from error
            values[id(node)] = y
            if tape is not None:
                tape.append((i, xs, y, ctx))
        return bufs.values[-1]

    def context(self, i, run, ws):
        """The :class:`~jitbp.context.Context` of call ``i`` in ``run``; ``None`` for contract 1."""
        if self.forms[i] == tiers.CONTRACT1:
            return None
        layer = self.net.calls[i].layer
        return Context(run.training, self.net.layer_settings[id(layer)], tuple(layer.state.values()), ws,
                       run.seeds[i], run.step)

    def loss(self, bufs, output, target, loss):
        """The loss value; writes dL/d(output) into the output's delta buffer."""
        n = output.shape[0]
        flat_target = target if loss.labels else target.reshape(n, -1)
        return float(loss.kernel(output.reshape(n, -1), flat_target, bufs.deltas[-1].reshape(n, -1)))

    def scale_output_delta(self, bufs, factor):
        """Multiply dL/d(output), as :meth:`loss` wrote it, by ``factor``."""
        bufs.deltas[-1] *= factor

    def backward(self, bufs, tape, updates):
        """Pop the tape, sending each call its output delta and summing fan-out deltas."""
        net = self.net
        while tape:
            i, xs, y, ctx = tape.pop()
            node = net.calls[i]
            layer = node.layer
            step = self.plan[i]
            if tiers.skips_backward(self.forms[i], step.need_dx):
                continue
            dxs = tuple(bufs.scratch(i, slot, inp.shape, net.dtype) if target is None else bufs.deltas[target]
                        for slot, (inp, target) in enumerate(zip(node.inputs, step.delta_of)))
            rule, hyper, states = updates.before(node)
            params = tuple(layer.params.values())
            grads = self.gradient_scratch(layer)
            try:
                tiers.backward(self.forms[i], layer.backward_kernel, xs=xs, y=y, dy=bufs.deltas[i], dxs=dxs,
                               need_dx=step.need_dx, params=params, rule=rule, hyper=hyper, states=states,
                               grads=grads, ws=bufs.workspaces[i], ctx=ctx)
            except COMPILE_ERRORS as error:
                raise compile_error(layer, "backward_kernel", error) from error
            for param, grad, state in zip(params, grads, states):
                kernels.apply_gradient(rule, param, grad, state, hyper)
            for slot, target in step.fan_in:
                bufs.deltas[target] += dxs[slot]
            updates.after(node)
