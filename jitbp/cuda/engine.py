"""``CudaEngine``: the tape engine of :mod:`jitbp.engine` with every kernel on the device.

Parameters live on the device. Outside ``learn`` the host arrays (``net.params``) are
the truth: :meth:`CudaEngine.forward` uploads them first. During ``learn`` they stay
on the device with the optimizer's state and the activations; the training data is
uploaded once per ``learn``, the shuffled order once per epoch, the hyper-parameters
once per batch, and the loss comes back as one scalar per batch. Parameters and
optimizer state are copied back into the host arrays at the end of every epoch, so
``net.params`` is current when ``learn`` returns or raises.

Contract-2 layers get a :class:`~jitbp.context.Context` whose settings, state and
workspaces are device arrays; state buffers travel with the parameters (uploaded by
:meth:`CudaEngine.push_params`, copied back by :meth:`CudaEngine.pull_params`). A
gradient-tier layer's launcher writes device gradient buffers that the engine applies
right after its backward, as the CPU engine does.
"""
import math

import numpy as np

from .. import tiers
from ..buffercache import BufferCache
from ..context import Context
from ..engine import GRADIENTS_SEED, GRADIENTS_STEP, Run, call_seeds
from ..unwind import backward_plan
from .api import cuda, require_device
from .launch import add, gather_rows, scale
from .losses import loss_value
from .resolve import device_kernels
from .rules import apply_gradient
from .updates import DeviceUpdates, HostUpdates


class DeviceBuffers:
    """Activations, deltas, workspaces and loss scratch on the device for one batch size."""

    def __init__(self, net, plan, batch):
        dtype = net.dtype
        self.batch = batch
        empty = cuda.device_array
        self.values = [empty((batch,) + node.shape, dtype) for node in net.calls]
        self.deltas = [empty((batch,) + node.shape, dtype) for node in net.calls]
        self.workspaces = [
            tuple(empty(shape, dtype) for shape in
                  node.layer.workspace_shapes(batch, [inp.shape for inp in node.inputs]))
            for node in net.calls
        ]
        self.inputs = [empty((batch,) + node.shape, dtype) for node in net.inputs]
        self.scratch = [[empty((batch,) + inp.shape, dtype) if target is None else None
                         for inp, target in zip(node.inputs, step.delta_of)]
                        for node, step in zip(net.calls, plan)]
        self.partials = empty(batch, np.float64)
        self.loss_out = empty(1, np.float64)
        self._targets = {}

    def target(self, dtype, shape):
        """A device buffer for ``batch`` targets of ``dtype`` and per-sample ``shape``."""
        key = (np.dtype(dtype), tuple(shape))
        if key not in self._targets:
            self._targets[key] = cuda.device_array((self.batch,) + tuple(shape), dtype)
        return self._targets[key]


class CudaEngine:
    """Runs a network's calls on the layers' CUDA kernels (same interface as ``Engine``)."""

    MAX_CACHED_BATCHES = 4

    def __init__(self, net):
        self.net = net
        self._kernels = device_kernels(net)
        require_device()
        self._plan = backward_plan(net)
        self._params = {id(layer): tuple(cuda.to_device(p) for p in layer.params.values())
                        for layer in net.layers}
        self._state = {id(layer): tuple(cuda.to_device(s) for s in layer.state.values()) for layer in net.layers}
        self._settings = {id(layer): cuda.to_device(net.layer_settings[id(layer)]) for layer in net.layers}
        self.forms = [tiers.form(node.layer) for node in net.calls]
        #: Device gradient buffers of each gradient-tier layer, shaped like its parameters.
        self._grads = {id(node.layer): tuple(cuda.device_array_like(p) for p in node.layer.params.values())
                       for node, form in zip(net.calls, self.forms) if form == tiers.GRADIENT}
        self._predict_run = Run(False, np.int64(0), call_seeds(net, GRADIENTS_SEED))
        self._gradients_run = Run(True, np.int64(GRADIENTS_STEP), self._predict_run.seeds)
        self._buffers = BufferCache(lambda batch: DeviceBuffers(net, self._plan, batch), self.MAX_CACHED_BATCHES)

    # -- parameters -----------------------------------------------------------------
    def device_params(self, layer):
        """The device copies of ``layer``'s parameters, in ``layer.params`` order."""
        return self._params[id(layer)]

    def _arrays(self, layer):
        """``(host, device)`` pairs of ``layer``'s parameters and state buffers."""
        return (list(zip(layer.params.values(), self._params[id(layer)]))
                + list(zip(layer.state.values(), self._state[id(layer)])))

    def push_params(self):
        """Upload every layer's host parameters and state (the truth outside ``learn``)."""
        for layer in self.net.layers:
            for host, device in self._arrays(layer):
                device.copy_to_device(host)

    def pull_params(self, layer=None):
        """Copy the device parameters and state (of ``layer``, or of all layers) into the host arrays."""
        for layer in self.net.layers if layer is None else (layer,):
            for host, device in self._arrays(layer):
                device.copy_to_host(host)

    # -- the CPU engine's interface ---------------------------------------------------
    def buffers(self, batch):
        """This thread's device buffers for ``batch`` samples."""
        return self._buffers.get(batch)

    def optimizer_updates(self, optimizer, seed=0):
        """The updater for one ``learn`` whose random keys come from ``seed``: uploads the
        parameters, keeps them on the device."""
        self.push_params()
        return DeviceUpdates(self, optimizer, seed)

    def train_epoch(self, inputs, target, order, size, loss, updates, capture=False, interrupt=None):
        """One epoch on the device; see :meth:`jitbp.engine.Engine.train_epoch`.

        ``capture`` (the CPU engine's compiled-epoch switch) does not apply here.
        """
        if updates.data is None or updates.data[0] is not target:
            updates.data = (target, [cuda.to_device(x) for x in inputs], cuda.to_device(target))
        _, xs_all, t_all = updates.data
        device_order = None if order is None else cuda.to_device(order)
        n = len(target)
        total = 0.0
        try:
            for k, start in enumerate(range(0, n, size)):
                if interrupt is not None and interrupt.pending:
                    return total, k, None
                stop = min(start + size, n)
                bufs = self.buffers(stop - start)
                if device_order is None:
                    xs, t = [x[start:stop] for x in xs_all], t_all[start:stop]
                else:
                    xs, t = bufs.inputs, bufs.target(target.dtype, target.shape[1:])
                    for x, buf in zip(xs_all, xs):
                        gather_rows(x, device_order, start, buf)
                    gather_rows(t_all.reshape(n, t_all.size // n), device_order, start,
                                t.reshape(t.shape[0], t.size // t.shape[0]))
                tape = []
                run = Run(True, np.int64(updates.steps_done + 1), updates.seeds)
                value = loss_value(loss, self._forward(bufs, xs, tape, run), t, bufs.deltas[-1],
                                   bufs.partials, bufs.loss_out)
                if not math.isfinite(value):
                    return total, k, value
                self._backward(bufs, tape, updates)
                updates.steps_done += 1
                total += value * (stop - start) / n if loss.mean else value
            return total, None, None
        finally:
            updates.pull()

    def to_host(self, array):
        """``array`` copied into a new NumPy array."""
        return array.copy_to_host()

    def forward(self, bufs, inputs, tape=None, run=None):
        """Upload the host parameters and ``inputs``, then run every call on the device
        (``run`` as in :meth:`jitbp.engine.Engine.forward`)."""
        self.push_params()
        for x, buf in zip(inputs, bufs.inputs):
            buf.copy_to_device(np.ascontiguousarray(x))
        return self._forward(bufs, bufs.inputs, tape, run)

    def loss(self, bufs, output, target, loss):
        """The loss of the device ``output`` against host ``target``; writes the output delta."""
        target = np.ascontiguousarray(target)
        device_target = bufs.target(target.dtype, target.shape[1:])
        device_target.copy_to_device(target)
        return loss_value(loss, output, device_target, bufs.deltas[-1], bufs.partials, bufs.loss_out)

    def scale_output_delta(self, bufs, factor):
        """Multiply dL/d(output), as :meth:`loss` wrote it, by ``factor``."""
        scale(bufs.deltas[-1], factor)

    def backward(self, bufs, tape, updates):
        """Unwind ``tape`` with a host updater (``Network.gradients``), state copied per call;
        the layers' state buffers, as the training-mode forward left them, come back too."""
        self._backward(bufs, tape, HostUpdates(self, updates))
        for layer in self.net.layers:
            for host, device in zip(layer.state.values(), self._state[id(layer)]):
                device.copy_to_host(host)

    # -- device passes ----------------------------------------------------------------
    def _forward(self, bufs, inputs, tape, run=None):
        net = self.net
        if run is None:
            run = self._predict_run if tape is None else self._gradients_run
        values = {id(node): data for node, data in zip(net.inputs, inputs)}
        for i, node in enumerate(net.calls):
            layer = node.layer
            xs = tuple(values[id(inp)] for inp in node.inputs)
            y = bufs.values[i]
            ws = bufs.workspaces[i]
            ctx = self._context(i, run, ws)
            tiers.forward(self.forms[i], self._kernels[id(layer)][0], xs=xs, params=self._params[id(layer)], y=y,
                          ws=ws, ctx=ctx)
            values[id(node)] = y
            if tape is not None:
                tape.append((i, xs, y, ctx))
        return bufs.values[-1]

    def _context(self, i, run, ws):
        """Call ``i``'s :class:`~jitbp.context.Context` over device arrays; ``None`` for contract 1."""
        if self.forms[i] == tiers.CONTRACT1:
            return None
        layer = self.net.calls[i].layer
        return Context(run.training, self._settings[id(layer)], self._state[id(layer)], ws, run.seeds[i], run.step)

    def _backward(self, bufs, tape, updates):
        updates.begin()
        while tape:
            i, xs, y, ctx = tape.pop()
            node = self.net.calls[i]
            layer = node.layer
            step = self._plan[i]
            if tiers.skips_backward(self.forms[i], step.need_dx):
                continue
            dxs = tuple(bufs.scratch[i][slot] if target is None else bufs.deltas[target]
                        for slot, target in enumerate(step.delta_of))
            rule, hyper, states = updates.before(node)
            params = self._params[id(layer)]
            grads = self._grads.get(id(layer), ())
            tiers.backward(self.forms[i], self._kernels[id(layer)][1], xs=xs, y=y, dy=bufs.deltas[i], dxs=dxs,
                           need_dx=step.need_dx, params=params, rule=rule, hyper=hyper, states=states,
                           grads=grads, ws=bufs.workspaces[i], ctx=ctx)
            for param, grad, state in zip(params, grads, states):
                apply_gradient(rule, param, grad, state, hyper)
            for slot, target in step.fan_in:
                add(bufs.scratch[i][slot], bufs.deltas[target])
            updates.after(node)
