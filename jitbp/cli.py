"""The ``jitbp`` command: ``demo``, ``layers``, ``plugins`` and ``cache``."""
import argparse
import os
import sys
import warnings

from .plugins import PluginWarning


def _layers(args):
    from .plugins import available_layers

    rows = available_layers()
    width = max(map(len, rows), default=0)
    for kind, info in rows.items():
        cuda = "cuda" if info["cuda"] else "    "
        print(f"{kind:<{width}}  {cuda}  {info['plugin']} {info['version']}: {info['description']}")


def _plugins(args):
    from .plugins import registry

    reg = registry()
    failed = False
    for name, info in sorted(reg.plugins.items()):
        if info.disabled:
            status = "disabled"
        elif info.error:
            status, failed = f"FAILED: {info.error}", True
        else:
            status = ", ".join(kind + (" (cuda)" if reg.layers[kind].has_cuda else "")
                               for kind in info.layers) or "(no layers)"
        print(f"{name} {info.version}: {status}")
    for name in reg.unmatched_disabled:
        print(f"{name}: asked to be disabled, but no installed plugin has this name")
    return 1 if failed and args.strict else 0


def _demo(args):
    from .demo import main

    main(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)


def _cache(args):
    from .capture.cache import FIX, cache_path, cache_usage, clear_cache, describe

    try:
        path, epochs, size, damaged = cache_usage()
        if args.clear:
            clear_cache()
    except OSError as error:
        print(f"{cache_path()}: cannot be used ({describe(error)}); training uses a private temporary cache "
              f"instead. {FIX}", file=sys.stderr)
        return 1
    if args.clear:
        print(f"removed {epochs} captured epoch(s), {size / 2**20:.1f} MiB, from {path}")
    else:
        note = f"; {damaged} damaged, rewritten when next used" if damaged else ""
        print(f"{path}: {epochs} captured epoch(s), {size / 2**20:.1f} MiB{note}")


def _disable(names):
    """Add ``names`` to the disabled plugins of this process and rediscover plugins."""
    from .plugins import DISABLE_ENV, reload

    current = [n for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()]
    os.environ[DISABLE_ENV] = ",".join(current + names)
    reload()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="jitbp", description=__doc__)
    parser.add_argument("--disable", action="append", default=[], metavar="PLUGIN",
                        help="skip this third-party plugin (repeatable; like JITBP_DISABLE_PLUGINS)")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="train an MLP on the digits dataset and print its accuracy")
    demo.add_argument("--epochs", type=int, default=30)
    demo.add_argument("--batch-size", type=int, default=32)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)
    commands.add_parser("layers", help="list every registered layer").set_defaults(run=_layers)
    plugins = commands.add_parser("plugins", help="list plugins, their versions, layers and failures")
    plugins.add_argument("--strict", action="store_true", help="exit 1 if a plugin failed to load")
    plugins.set_defaults(run=_plugins)
    cache = commands.add_parser("cache", help="where captured epochs are cached (JITBP_CACHE_DIR), and their size")
    cache.add_argument("--clear", action="store_true", help="delete them (they are rebuilt when next used)")
    cache.set_defaults(run=_cache)
    args = parser.parse_args(argv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PluginWarning)
        if args.disable:
            _disable(args.disable)
        code = args.run(args) or 0
    for warning in caught:
        if not issubclass(warning.category, PluginWarning):
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
        elif args.command != "plugins":  # that command lists failures and unmatched names itself
            print(f"jitbp: warning: {warning.message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
