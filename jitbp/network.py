"""``Network`` and ``Sequential``: the learn / predict black box over the tape engine."""
import numpy as np

from . import checks, tiers
from .access import Access
from .engine import GRADIENTS_SEED, GRADIENTS_STEP, Engine, GradientCollector, Run, call_seeds
from .errors import ShapeError
from .graph import Input, Node, reachable_inputs, topological_calls
from .layer import Layer
from .losses import get_loss

DEVICES = ("cpu", "cuda")
#: Samples per pass in predict, loss and gradients: bounds memory on large inputs.
EVAL_CHUNK = 4096


class Network:
    """A graph of layer calls from ``inputs`` to ``output``, trained by back-propagation."""

    def __init__(self, inputs, output, dtype=np.float64, device="cpu"):
        self.dtype = checks.as_dtype(dtype)
        if device not in DEVICES:
            raise ValueError(f"unknown device {device!r}; known devices: {', '.join(DEVICES)}")
        self.device = device
        self._build(inputs, output)

    def _build(self, inputs, output):
        inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if not all(isinstance(node, Node) and node.is_input for node in inputs):
            raise TypeError("Network inputs must be jitbp.Input nodes")
        if not isinstance(output, Node) or output.is_input:
            raise TypeError("Network output must be the result of a layer call")
        self.calls = topological_calls(output)
        used = reachable_inputs(self.calls, output)
        missing = [node for node in used if node not in inputs]
        if missing:
            raise ValueError(f"the output depends on {len(missing)} Input(s) not passed to Network")
        self.inputs = inputs
        self.output = output
        self.index = {id(node): i for i, node in enumerate(self.calls)}
        self.layers = list({id(n.layer): n.layer for n in self.calls}.values())
        counts = {}
        for node in self.calls:
            counts[id(node.layer)] = counts.get(id(node.layer), 0) + 1
        #: Layers with parameters called more than once: their update waits for the summed gradient.
        self.shared_layers = [layer for layer in self.layers if counts[id(layer)] > 1 and layer.params]
        self._first_call = {}
        for node in self.calls:
            self._first_call.setdefault(id(node.layer), node)
        self.layer_names = self._name_layers()
        for layer in self.layers:
            for arrays in (layer.params, layer.state):
                for key, value in arrays.items():
                    if value.dtype != self.dtype or not value.flags.c_contiguous:
                        arrays[key] = np.ascontiguousarray(value, dtype=self.dtype)
        #: Shapes of :attr:`states` at build, which ``learn`` and ``predict`` check are kept.
        self.state_shapes = {key: value.shape for key, value in self.states.items()}
        #: ``{id(layer): float64 array}`` of each layer's settings, as kernels read them.
        self.layer_settings = {id(layer): tiers.pack_settings(layer, self.layer_names[id(layer)])
                               for layer in self.layers}
        self.engine = self._make_engine()
        #: ``learn`` holds it exclusively, ``predict``, ``loss``, ``gradients`` and ``save`` shared.
        self._access = Access()

    def _make_engine(self):
        if self.device == "cuda":
            from .cuda.engine import CudaEngine  # numba-cuda is imported only for device="cuda"

            return CudaEngine(self)
        return Engine(self)

    def _name_layers(self):
        names, taken, counters = {}, set(), {}
        for layer in self.layers:
            if layer.name is not None:
                if layer.name in taken:
                    raise ValueError(f"two layers are named {layer.name!r}")
                names[id(layer)] = layer.name
                taken.add(layer.name)
        for layer in self.layers:
            if id(layer) in names:
                continue
            k = counters.get(layer.kind, 0)
            while f"{layer.kind}_{k}" in taken:
                k += 1
            counters[layer.kind] = k + 1
            names[id(layer)] = f"{layer.kind}_{k}"
            taken.add(names[id(layer)])
        return names

    def first_call_of(self, layer):
        """The earliest call of ``layer``: where its shared update happens on unwind."""
        return self._first_call[id(layer)]

    @property
    def params(self):
        """``{"<layer name>.<param>": array}`` in call order; the arrays are the layers' own."""
        return {f"{self.layer_names[id(layer)]}.{key}": value
                for layer in self.layers for key, value in layer.params.items()}

    @property
    def states(self):
        """``{"<layer name>.<state>": array}`` of the layers' state buffers, like :attr:`params`."""
        return {f"{self.layer_names[id(layer)]}.{key}": value
                for layer in self.layers for key, value in layer.state.items()}

    def predict(self, X):
        """Network output for samples ``X`` (a new array)."""
        inputs = checks.inputs(self, X)
        n = len(inputs[0])
        result = np.empty((n,) + self.output.shape, self.dtype)
        with self._access.shared():
            for start in range(0, n, EVAL_CHUNK):
                chunk = [np.ascontiguousarray(x[start:start + EVAL_CHUNK]) for x in inputs]
                bufs = self.engine.buffers(len(chunk[0]))
                result[start:start + len(chunk[0])] = self.engine.to_host(self.engine.forward(bufs, chunk))
        return result

    def loss(self, X, Y, loss="mse", *, training=False, seed=GRADIENTS_SEED, step=GRADIENTS_STEP):
        """The loss over all samples (sum losses summed, mean losses averaged), in prediction
        mode; with ``training`` the one :meth:`gradients` differentiates at ``seed`` and ``step``."""
        loss = get_loss(loss)
        inputs = checks.inputs(self, X)
        target = checks.targets(self, Y, loss, len(inputs[0]))
        n = len(target)
        total = 0.0
        run = self._training_run(seed, step)
        with self._access.shared():
            for _, _, samples, value in self._loss_chunks(inputs, target, loss, taped=training, run=run):
                total += value * samples / n if loss.mean else value
        return total

    def _training_run(self, seed, step):
        """The training-mode pass at ``seed`` and ``step``; ``None`` for the engine's default one."""
        seed = checks.seed(seed)
        step = checks.positive_int("step", step)
        if (seed, step) == (GRADIENTS_SEED, GRADIENTS_STEP):
            return None
        return Run(True, np.int64(step), call_seeds(self, seed))

    def gradients(self, X, Y, loss="mse", *, seed=GRADIENTS_SEED, step=GRADIENTS_STEP):
        """dLoss/dparam for every parameter over the whole of X (same keys as ``params``),
        summed over chunks of samples (a mean loss's chunk weighted by its share). Layers
        run in training mode, their random streams keyed as ``learn(seed=seed)`` keys them
        at optimizer step ``step``."""
        loss = get_loss(loss)
        inputs = checks.inputs(self, X)
        target = checks.targets(self, Y, loss, len(inputs[0]))
        n = len(target)
        collector = GradientCollector(self)
        run = self._training_run(seed, step)
        with self._access.shared():
            for bufs, tape, samples, _ in self._loss_chunks(inputs, target, loss, taped=True, run=run):
                if loss.mean and samples < n:
                    self.engine.scale_output_delta(bufs, samples / n)
                self.engine.backward(bufs, tape, collector)
        return {f"{self.layer_names[id(layer)]}.{key}": grad
                for layer in self.layers
                for key, grad in zip(layer.params, collector.grads[id(layer)])}

    def _loss_chunks(self, inputs, target, loss, taped, run=None):
        """Forward pass and loss over chunks of EVAL_CHUNK samples, recording each on a
        fresh tape when ``taped`` (in training mode, at ``run`` when given): yields
        ``(buffers, tape, samples, loss value)``."""
        n = len(target)
        for start in range(0, n, EVAL_CHUNK):
            stop = min(start + EVAL_CHUNK, n)
            bufs = self.engine.buffers(stop - start)
            tape = [] if taped else None
            xs = [np.ascontiguousarray(x[start:stop]) for x in inputs]
            output = self.engine.forward(bufs, xs, tape) if run is None else self.engine.forward(bufs, xs, tape, run)
            value = loss.check(self.engine.loss(bufs, output, np.ascontiguousarray(target[start:stop]), loss))
            yield bufs, tape, stop - start, value

    def learn(self, X, Y=None, loss="mse", optimizer=None, epochs=1, batch_size=None, shuffle=True,
              seed=None, tol=None, patience=5, **options):
        """Train; returns the loss of each epoch (a :class:`~jitbp.history.History`). See
        :func:`jitbp.training.learn` for ``options`` (validation, metrics, callbacks, verbose,
        parallel). Calls on this network from other threads wait until it returns."""
        from .training import learn

        with self._access.exclusive():
            return learn(self, X, Y, loss=loss, optimizer=optimizer, epochs=epochs, batch_size=batch_size,
                         shuffle=shuffle, seed=seed, tol=tol, patience=patience, **options)

    def predict_proba(self, X, loss=None):
        """Class probabilities: softmax of the output of a cross_entropy network, the output
        of a bce one. ``loss`` defaults to the loss the last ``learn`` used."""
        from .proba import predict_proba

        return predict_proba(self, X, loss)

    def __reduce__(self):
        # Layers hold Numba kernels: a pickle is the model file's bytes (parameters and graph).
        from .proba import network_from_bytes, network_to_bytes

        return network_from_bytes, (network_to_bytes(self), getattr(self, "trained_loss", None))

    def save(self, path, optimizer=None):
        """Write the model (and optionally the optimizer's state) to exactly ``path``."""
        from .serialization import save

        with self._access.shared():
            save(self, path, optimizer)

    def __repr__(self):
        chain = " -> ".join(self.layer_names[id(n.layer)] for n in self.calls)
        return f"<{type(self).__name__} {self.dtype.__name__} {chain}>"


class Sequential(Network):
    """A chain of layers; the input width comes from the first layer that declares one."""

    def __init__(self, *layers, dtype=np.float64, device="cpu"):
        if not layers or not all(isinstance(layer, Layer) for layer in layers):
            raise TypeError("Sequential takes one or more jitbp layers")
        shape = next((layer.input_shape() for layer in layers if layer.input_shape() is not None), None)
        if shape is None:
            raise ShapeError("Sequential needs a layer that fixes the input width (e.g. dense); "
                             "use jitbp.Network with jitbp.Input otherwise")
        source = Input(shape)
        node = source
        for layer in layers:
            node = layer(node)
        super().__init__(source, node, dtype=dtype, device=device)
