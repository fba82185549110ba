"""The layer contract every plugin implements."""
import numpy as np

from .errors import ShapeError


KERNEL_ATTRIBUTES = ("forward_kernel", "backward_kernel", "backward_forward_kernel")

#: Kernel tiers (``Layer.tier``); docs/plugins.md gives each one's signatures.
#: FUSED: the backward applies the optimizer itself through ``jitbp.kernels.updated``.
#: GRADIENT: the backward writes each parameter's gradient into ``grads``; the engine
#: applies the optimizer right after that layer's backward.
#: FREE: no parameters; short signatures.
FUSED, GRADIENT, FREE = "fused", "gradient", "free"
TIERS = (FUSED, GRADIENT, FREE)


class Layer:
    """A differentiable function with optional parameters and two Numba kernels.

    Subclasses set the class attributes below and fill ``self.params`` in
    ``__init__``. Arrays passed to the kernels always have the batch first.

    ``forward_kernel(xs, params, y, ws)``
        Write the output ``y`` from the tuple of inputs ``xs`` and the tuple of
        parameters ``params`` (in ``self.params`` order). ``ws`` is the tuple of
        workspace arrays from :meth:`workspace_shapes`.
    ``backward_kernel(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws)``
        Given the output delta ``dy``: if ``need_dx``, write each input delta into
        ``dxs[k]`` using the parameters *as they were* in the forward pass; then, for
        every parameter element, call ``jitbp.kernels.updated(rule, p, g, states[j],
        flat_index, hyper)`` with its gradient ``g`` and store the result. No full
        gradient array is needed.
    ``backward_forward_kernel(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws, next_xs, next_y)``
        Optional. ``backward_kernel``, then ``forward_kernel(next_xs, params, next_y, ws)``
        with the updated parameters, so a layer can update its weights and run the next
        step's forward in one pass over them. The captured epoch calls it for a layer that
        is not shared and whose inputs are all network inputs (so ``need_dx`` is false),
        when the next batch has the same size. A subclass that replaces either kernel
        must replace or clear this one too.
    """

    #: Name users pass to :func:`jitbp.layer`; unique across plugins.
    kind = ""
    #: One line shown by :func:`jitbp.available_layers` and ``jitbp layers``.
    description = ""
    #: Number of inputs a call takes; ``None`` means one or more.
    n_inputs = 1
    forward_kernel = None
    backward_kernel = None
    backward_forward_kernel = None
    #: True when both kernels are small loops: the captured epoch then inlines them,
    #: saving a call (and its reference counting) per step for some compile time.
    inline_kernels = False
    #: Optional CUDA support: the dotted name (``"pkg.module"`` or ``"pkg.module.obj"``)
    #: of a module or object providing ``forward`` and ``backward`` with the CPU
    #: kernels' signatures, taking device arrays. It is resolved only when a network
    #: runs on ``device="cuda"``.
    cuda_kernels = None
    #: Contract 2: ``FUSED`` (the default, today's signatures), ``GRADIENT`` or ``FREE``.
    tier = FUSED
    #: Contract 2 for the fused tier: the kernels' last argument is a
    #: :class:`jitbp.context.Context` instead of the workspace tuple. Always true in the
    #: other tiers. A layer that sets nothing follows contract 1 unchanged.
    uses_context = False
    #: Indices of the workspaces whose contents a forward leaves for the backward of the
    #: same call; the others are undefined at the start of every kernel (the kit fills
    #: them with NaN). ``None``: all of them persist (contract 1's behaviour).
    kept_workspaces = None

    def __init_subclass__(cls, **kwargs):
        # Numba dispatchers are descriptors: as plain class attributes they would be
        # bound as methods, so kernels are stored as static methods.
        super().__init_subclass__(**kwargs)
        for attr in KERNEL_ATTRIBUTES:
            value = cls.__dict__.get(attr)
            if value is not None and not isinstance(value, (staticmethod, property)):
                setattr(cls, attr, staticmethod(value))

    def __init__(self, *, name=None):
        if name is not None and (not isinstance(name, str) or not name or "." in name):
            raise ValueError(f"layer name must be a non-empty string without '.', got {name!r}")
        self.name = name
        self.params = {}
        #: Non-trainable arrays (running statistics, counters) in the network's dtype:
        #: kernels see them as ``ctx.state``; model files save them; no optimizer moves them.
        self.state = {}

    def output_shape(self, input_shapes):
        """Per-sample output shape for the given per-sample input shapes."""
        return input_shapes[0]

    def input_shape(self):
        """Per-sample input shape this layer requires, or ``None`` if any will do."""
        return None

    def workspace_shapes(self, batch, input_shapes):
        """Shapes of scratch arrays (network dtype) both kernels receive as ``ws``."""
        return ()

    def settings(self):
        """``{name: number}`` of the floats and ints the kernels read as ``ctx.settings``, in order."""
        return {}

    def config(self):
        """Constructor keyword arguments that rebuild this layer (JSON types only)."""
        return {}

    @classmethod
    def param_shapes(cls, **config):
        """``{name: shape}`` of the parameters ``cls(**config)`` would have, or ``None`` (unknown).

        Model files compare it with the stored arrays before building the layer, so a
        damaged config never allocates more than the file holds. Override it in layers
        with parameters sized by their config.
        """
        return None

    @classmethod
    def state_shapes(cls, **config):
        """``{name: shape}`` of the state buffers ``cls(**config)`` would have, or ``None``."""
        return None

    def __call__(self, *inputs):
        from .graph import call_layer

        return call_layer(self, inputs)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"<{self.kind}{'(' + args + ')' if args else ''}>"


def check_param(name, value, shape):
    """``value`` as a float64 array of ``shape``, or a clear error."""
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric: {exc}") from None
    if array.shape != tuple(shape):
        raise ShapeError(f"{name} must have shape {tuple(shape)}, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf")
    return array


def uniform(rng, bound, shape, dtype):
    """Samples of U(-bound, bound) drawn directly in ``dtype`` (no float64 temporary)."""
    values = rng.random(shape, dtype=dtype)
    values *= 2 * bound
    values -= bound
    return values


def check_size(name, value):
    """``value`` as a positive int, or a clear error."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return int(value)
