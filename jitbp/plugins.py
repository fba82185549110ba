"""The plugin manager: built-in layer modules plus the ``jitbp`` entry-point group."""
import importlib
import os
from dataclasses import dataclass
from importlib.metadata import entry_points

import pluggy

from . import hookspecs
from .errors import PluginError, UnknownNameError
from .layer import Layer

ENTRY_POINT_GROUP = "jitbp"
#: Comma-separated plugin names to skip; ``*`` skips every third-party plugin.
DISABLE_ENV = "JITBP_DISABLE_PLUGINS"
DEFAULT_PLUGINS = (
    "jitbp.layers.dense",
    "jitbp.layers.activations",
    "jitbp.layers.softmax",
    "jitbp.layers.merge",
)


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
    disabled: bool = False


class Registry:
    """Layers collected from every plugin, with failures recorded by plugin name."""

    def __init__(self, disabled=()):
        self.manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.manager.add_hookspecs(hookspecs)
        self.layers = {}
        self.plugins = {}
        self._versions = {}
        self._disabled = set(disabled)
        for module_name in DEFAULT_PLUGINS:
            self.manager.register(importlib.import_module(module_name), name=module_name)
            self._versions[module_name] = _own_version()
        self._load_entry_points()
        for impl in self.manager.hook.register_layers.get_hookimpls():
            self._collect(impl)

    def _load_entry_points(self):
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            version = ep.dist.version if ep.dist else "unknown"
            if ep.name in self._disabled or "*" in self._disabled:
                self.plugins[ep.name] = PluginInfo(ep.name, version, disabled=True)
                continue
            try:
                plugin = ep.load()
                self.manager.register(plugin, name=ep.name)
            except Exception as exc:  # a broken plugin must not stop the others
                self.plugins[ep.name] = PluginInfo(ep.name, version, error=f"import failed: {exc!r}")
                continue
            hooks = sorted(caller.name for caller in self.manager.get_hookcallers(plugin) or ())
            if "register_layers" not in hooks:  # e.g. a misspelled hook: pluggy accepts it silently
                self.manager.unregister(plugin)
                self.plugins[ep.name] = PluginInfo(
                    ep.name, version, error=f"implements no register_layers hook (found: {', '.join(hooks) or 'none'})")
                continue
            self._versions[ep.name] = version

    def register_plugin(self, plugin, name, version="unknown"):
        """Register a plugin object at run time (tests, notebooks); returns its info."""
        self.manager.register(plugin, name=name)
        self._versions[name] = version
        for impl in self.manager.hook.register_layers.get_hookimpls():
            if impl.plugin_name == name:
                self._collect(impl)
        return self.plugins[name]

    def unregister_plugin(self, name):
        """Remove a plugin registered with :meth:`register_plugin` and its layers."""
        self.manager.unregister(name=name)
        for kind in [k for k, info in self.layers.items() if info.plugin == name]:
            del self.layers[kind]
        self.plugins.pop(name, None)

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
        except Exception as exc:
            self.plugins[name] = PluginInfo(name, self._versions.get(name, "unknown"), error=str(exc) or repr(exc))
            return
        version = self._versions.get(name, "unknown")
        for cls in found:
            self.layers[cls.kind] = LayerInfo(cls.kind, cls, name, version)
        previous = self.plugins.get(name)
        kinds = (previous.layers if previous else ()) + tuple(cls.kind for cls in found)
        self.plugins[name] = PluginInfo(name, version, layers=kinds)

    def layer_class(self, kind):
        if not isinstance(kind, str):
            raise TypeError(f"layer name must be a string, got {type(kind).__name__}")
        try:
            return self.layers[kind].cls
        except KeyError:
            known = ", ".join(sorted(self.layers))
            raise UnknownNameError(f"unknown layer {kind!r}; known layers: {known}") from None


def _check_layer_class(cls):
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise PluginError(f"register() takes a jitbp.Layer subclass, got {cls!r}")
    if not isinstance(cls.kind, str) or not cls.kind.isidentifier():
        raise PluginError(f"{cls.__name__}.kind must be an identifier, got {cls.kind!r}")
    for attr in ("forward_kernel", "backward_kernel"):
        if not hasattr(getattr(cls, attr), "py_func"):
            raise PluginError(f"layer {cls.kind!r}: {attr} must be a Numba-jitted function")


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
