"""The plugin manager: built-in layer modules plus the ``jitbp`` entry-point group.

Plugins register layers, losses (``register_losses``) and optimizers (``register_optimizers``)."""
import importlib
import os
import warnings
from dataclasses import dataclass, replace
from importlib.metadata import entry_points

import pluggy

from . import hookspecs, kernel_stamp, losses, optim
from .errors import PluginError, UnknownNameError
from .layer import Layer

ENTRY_POINT_GROUP = "jitbp"
#: Comma-separated plugin names to skip; ``*`` skips every third-party plugin.
DISABLE_ENV = "JITBP_DISABLE_PLUGINS"
HOOKS = ("register_layers", "register_losses", "register_optimizers")
DEFAULT_PLUGINS = (
    "jitbp.layers.dense",
    "jitbp.layers.activations",
    "jitbp.layers.softmax",
    "jitbp.layers.merge",
    "jitbp.layers.dropout",
    "jitbp.layers.normalization",
    "jitbp.layers.smooth",
)


class PluginWarning(UserWarning):
    """A plugin failed to load, or a name to disable matches no plugin."""


@dataclass(frozen=True)
class LayerInfo:
    """A registered layer and where it came from."""

    kind: str
    cls: type
    plugin: str
    version: str

    @property
    def description(self):
        return self.cls.description

    @property
    def has_cuda(self):
        return self.cls.cuda_kernels is not None


@dataclass(frozen=True)
class PluginInfo:
    """One plugin: its name, distribution version, and the layers or the error it gave."""

    name: str
    version: str
    layers: tuple = ()
    error: str = ""
    #: Names of the losses and optimizers it registered.
    losses: tuple = ()
    optimizers: tuple = ()
    disabled: bool = False
    distribution: str = ""

    def describe(self):
        """``name (distribution version): error``, as warnings and unknown-layer errors say it."""
        return f"{self.name!r} (distribution {self.distribution or 'unknown'} {self.version}): {self.error}"


class Registry:
    """Layers collected from every plugin, with failures recorded by plugin name."""

    def __init__(self, disabled=()):
        self.manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.manager.add_hookspecs(hookspecs)
        self.layers = {}
        self.plugins = {}
        self._versions = {}
        self._distributions = {}
        self._disabled = set(disabled)
        for module_name in DEFAULT_PLUGINS:
            self.manager.register(importlib.import_module(module_name), name=module_name)
            self._versions[module_name] = _own_version()
            self._distributions[module_name] = "jitbp"
        self._load_entry_points()
        for impl in self.manager.hook.register_layers.get_hookimpls():
            self._collect(impl)
        self._collect_rules(None)
        self._warn()

    def _load_entry_points(self):
        found = set()
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            version = ep.dist.version if ep.dist else "unknown"
            distribution = ep.dist.name if ep.dist else ""
            found.add(ep.name)
            if ep.name in self._disabled or "*" in self._disabled:
                self.plugins[ep.name] = PluginInfo(ep.name, version, disabled=True, distribution=distribution)
                continue
            owner = self._distributions.get(ep.name)
            if owner is not None:  # a second distribution, or a built-in module, has this name
                key = f"{ep.name} ({distribution})"
                self.plugins[key] = PluginInfo(key, version, distribution=distribution, error=(
                    f"not loaded: the plugin name {ep.name!r} is already taken by distribution {owner}"))
                continue
            self._distributions[ep.name] = distribution
            self._versions[ep.name] = version
            try:
                kernel_stamp.refresh(ep.module.split(".")[0], depends=("jitbp",))
                plugin = ep.load()
                self.manager.register(plugin, name=ep.name)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # a broken plugin must not stop the others, nor exit the process
                self._fail(ep.name, f"import failed: {_error(exc)}")
                continue
            hooks = sorted(caller.name for caller in self.manager.get_hookcallers(plugin) or ())
            if not set(hooks) & set(HOOKS):  # e.g. a misspelled hook: pluggy accepts it silently
                self.manager.unregister(plugin)
                self._fail(ep.name, f"implements none of the hooks {', '.join(HOOKS)} "
                                    f"(found: {', '.join(hooks) or 'none'})")
        #: Names asked to be disabled that no installed plugin has (typos, uninstalled plugins).
        self.unmatched_disabled = sorted(self._disabled - found - {"*"})
        if self.unmatched_disabled:
            warnings.warn(f"{DISABLE_ENV} names {', '.join(map(repr, self.unmatched_disabled))}, which match no "
                          f"installed plugin (installed: {', '.join(sorted(found)) or 'none'}; built-in layers "
                          f"cannot be disabled)", PluginWarning, stacklevel=5)

    def _fail(self, name, error):
        self.plugins[name] = PluginInfo(name, self._versions.get(name, "unknown"), error=error,
                                        distribution=self._distributions.get(name, ""))

    def failed(self):
        """The plugins that failed to load, by name."""
        return {name: info for name, info in sorted(self.plugins.items()) if info.error}

    def _warn(self):
        for info in self.failed().values():
            warnings.warn(f"jitbp plugin {info.describe()}; its layers are not available", PluginWarning,
                          stacklevel=5)

    def register_plugin(self, plugin, name, version="unknown"):
        """Register a plugin object at run time (tests, notebooks); returns its info."""
        self.manager.register(plugin, name=name)
        self._versions[name] = version
        for impl in self.manager.hook.register_layers.get_hookimpls():
            if impl.plugin_name == name:
                self._collect(impl)
        self._collect_rules(name)
        return self.plugins[name]

    def unregister_plugin(self, name):
        """Remove a plugin registered with :meth:`register_plugin` and its layers."""
        self.manager.unregister(name=name)
        for kind in [k for k, info in self.layers.items() if info.plugin == name]:
            del self.layers[kind]
        info = self.plugins.pop(name, None)
        if info is not None:
            for loss in info.losses:
                losses.unregister_loss(loss)
            for cls_name in info.optimizers:
                optim.unregister_optimizer(optim.OPTIMIZERS[cls_name])

    def _collect(self, impl):
        name = impl.plugin_name
        found = []

        def register(cls):
            _check_layer_class(cls)
            if cls.kind in self.layers:
                raise PluginError(f"layer {cls.kind!r} is already registered by {self.layers[cls.kind].plugin!r}")
            found.append(cls)

        try:
            impl.function(register=register)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            self._fail(name, _error(exc))
            return
        version = self._versions.get(name, "unknown")
        for cls in found:
            self.layers[cls.kind] = LayerInfo(cls.kind, cls, name, version)
        previous = self.plugins.get(name)
        kinds = (previous.layers if previous else ()) + tuple(cls.kind for cls in found)
        self.plugins[name] = PluginInfo(name, version, layers=kinds, distribution=self._distributions.get(name, ""))

    def _collect_rules(self, only):
        """Run the ``register_losses`` and ``register_optimizers`` hooks (of plugin ``only``,
        or of every plugin); a plugin whose hook raises is recorded as failed."""
        for hook, add, field in ((self.manager.hook.register_losses, _add_loss, "losses"),
                                 (self.manager.hook.register_optimizers, _add_optimizer, "optimizers")):
            for impl in hook.get_hookimpls():
                name = impl.plugin_name
                if only is not None and name != only:
                    continue
                found = []
                try:
                    impl.function(register=lambda item: found.append(add(item)))
                except KeyboardInterrupt:
                    raise
                except BaseException as exc:
                    self._fail(name, _error(exc))
                    continue
                previous = self.plugins.get(name) or PluginInfo(name, self._versions.get(name, "unknown"),
                                                                distribution=self._distributions.get(name, ""))
                if not previous.error:
                    self.plugins[name] = replace(previous, **{field: getattr(previous, field) + tuple(found)})

    def layer_class(self, kind):
        if not isinstance(kind, str):
            raise TypeError(f"layer name must be a string, got {type(kind).__name__}")
        try:
            return self.layers[kind].cls
        except KeyError:
            known = ", ".join(sorted(self.layers))
            failed = "; ".join(info.describe() for info in self.failed().values())
            hint = f". It may come from a plugin that failed to load: {failed}" if failed else ""
            raise UnknownNameError(f"unknown layer {kind!r}; known layers: {known}{hint}") from None


def _add_loss(loss):
    losses.register_loss(loss)
    return loss.name


def _add_optimizer(cls):
    optim.register_optimizer(cls)
    return cls.__name__


def _check_layer_class(cls):
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise PluginError(f"register() takes a jitbp.Layer subclass, got {cls!r}")
    if not isinstance(cls.kind, str) or not cls.kind.isidentifier():
        raise PluginError(f"{cls.__name__}.kind must be an identifier, got {cls.kind!r}")
    for attr in ("forward_kernel", "backward_kernel"):
        if not hasattr(getattr(cls, attr), "py_func"):
            raise PluginError(f"layer {cls.kind!r}: {attr} must be a Numba-jitted function")


def _error(exc):
    """``Type: message`` of an exception a plugin raised."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _own_version():
    from . import __version__

    return __version__


_registry = None


def registry():
    """The process-wide registry, loaded on first use."""
    global _registry
    if _registry is None:
        disabled = [n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()]
        _registry = Registry(disabled)
    return _registry


def reload():
    """Forget the registry so the next use rediscovers plugins (after installs, env changes)."""
    global _registry
    _registry = None


def available_layers():
    """``{kind: {"description", "plugin", "version", "cuda"}}`` for every registered layer."""
    return {
        kind: {"description": info.description, "plugin": info.plugin,
               "version": info.version, "cuda": info.has_cuda}
        for kind, info in sorted(registry().layers.items())
    }


def layer(kind, *args, **kwargs):
    """Build a layer by its registered name: ``layer("dense", 2, 3, seed=0)``."""
    cls = registry().layer_class(kind)
    try:
        return cls(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"layer {kind!r}: {exc}") from None
