"""Package attributes imported on first use.

A domain plugin's ``kernels`` package names dozens of Numba functions; importing them all
imports Numba and compiles nothing, but costs about 0.3 s, and the driver of a run, which
only validates and plans, never calls one. A package whose ``__init__`` says::

    __getattr__, __dir__ = lazy_attributes(__name__, {"kmer_counts": ".kmers", ...})

imports ``.kmers`` the first time ``package.kmer_counts`` is read (``from package import
kmer_counts`` included), and from then on the name is an ordinary attribute. Workers, which
will call the kernels, import them all before their first task: :func:`load_lazy`
(``warm_workers``), or an actor's ``setup``. A module that uses another only inside its
functions can name it with :func:`lazy_module` instead.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from types import ModuleType

#: Packages that named lazy attributes, in the order they were imported.
_LAZY: dict[str, dict[str, str]] = {}
#: Modules handed out by lazy_module, by name.
_LAZY_MODULES: dict[str, ModuleType] = {}


class _SharedNamePackage(ModuleType):
    """A package with a lazy attribute named like the submodule that defines it (``repair`` in ``.repair``).
    Importing a submodule sets the package's attribute of that name to the submodule, by whichever import
    loads it first, after which ``__getattr__`` is never asked; so such an attribute is read through here."""

    def __getattribute__(self, name: str):
        value = super().__getattribute__(name)
        if (
            isinstance(value, ModuleType)
            and _LAZY.get(super().__getattribute__("__name__"), {}).get(name) == "." + name
        ):
            value = getattr(value, name)
            setattr(self, name, value)
        return value


def lazy_attributes(package: str, names: dict[str, str]) -> tuple[Callable, Callable]:
    """``(__getattr__, __dir__)`` for ``package``'s ``__init__``: ``names`` maps each attribute to the module,
    relative to ``package``, that defines it under the same name."""
    _LAZY[package] = names
    if any(module == "." + name for name, module in names.items()):
        sys.modules[package].__class__ = _SharedNamePackage

    def __getattr__(name: str):
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(names) | set(vars(sys.modules[package])))

    return __getattr__, __dir__


def lazy_module(name: str, package: str | None = None) -> ModuleType:
    """The module ``name`` (relative to ``package``), executed when one of its attributes is first read."""
    full = importlib.util.resolve_name(name, package)
    if full in sys.modules:
        return sys.modules[full]
    spec = importlib.util.find_spec(full)
    if spec is None:
        raise ModuleNotFoundError(f"no module named {full!r}", name=full)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[full] = module
    spec.loader.exec_module(module)
    _LAZY_MODULES[full] = module
    return module


def load_lazy() -> list[str]:
    """Import every module behind the lazy attributes and lazy modules named so far; returns their names."""
    loaded = []
    for package, names in list(_LAZY.items()):
        for module in sorted(set(names.values())):
            loaded.append(importlib.import_module(module, package).__name__)
    for full, module in list(_LAZY_MODULES.items()):
        getattr(module, "__name__")  # noqa: B009  (reading an attribute executes the module)
        loaded.append(full)
    return loaded
