"""``hpcprep new-plugin NAME [--kind encoder|reader|sink]``: a new plugin project from the
templates in ``templates/plugin``.

``common/`` holds what every kind of plugin has (pyproject, package ``__init__``, sample
data); ``encoder/``, ``reader/`` and ``sink/`` each hold one working stage of that kind with
its plugin hook, tests, example spec and README, laid over ``common/``. Template files end in
``.tmpl``; ``{{name}}``-style placeholders in their text are filled in, the folder
``package`` becomes ``hpcprep_NAME`` and ``gitignore`` becomes ``.gitignore``. The project
is built in a temporary folder next to the target and renamed into place, so a failure
leaves nothing half-written.
"""

from __future__ import annotations

import keyword
import os
import re
import shutil
import tempfile
from importlib import resources
from pathlib import Path

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
MAX_LENGTH = 40
RESERVED = {"hpcprep"}  # the core's own plugin name
SUFFIX = ".tmpl"
RENAMES = {"package": "hpcprep_{name}", "gitignore": ".gitignore"}
#: The stage each kind of plugin starts with: the project's description and its dependencies
#: besides hpcprep.
KINDS = {
    "encoder": ("byte histograms of files, as vectors", ["numba>=0.60", "numpy>=1.26"]),
    "reader": ("rows of CSV files of numbers, as records", ["numpy>=1.26"]),
    "sink": ("records as JSON Lines files", ["numpy>=1.26", "pyarrow>=16"]),
}


class ScaffoldError(ValueError):
    """The plugin cannot be created (bad name, target exists); nothing was written."""


def check_name(name: str) -> None:
    """Raise ``ScaffoldError`` unless ``name`` can be a plugin name, stage prefix and package suffix."""
    example = "e.g. 'spectra' or 'cryo_em'"
    if not NAME.match(name):
        raise ScaffoldError(
            f"plugin name {name!r}: use lowercase letters, digits and underscores, starting with a "
            f"letter ({example}); it becomes the stage prefix NAME. and the package hpcprep_NAME"
        )
    if len(name) > MAX_LENGTH:
        raise ScaffoldError(f"plugin name {name!r} is longer than {MAX_LENGTH} characters")
    if name.endswith("_") or "__" in name:
        raise ScaffoldError(f"plugin name {name!r}: no trailing or doubled underscores ({example})")
    if keyword.iskeyword(name) or name in RESERVED:
        raise ScaffoldError(f"plugin name {name!r} is reserved; choose another ({example})")


def create_plugin(name: str, dest: str | os.PathLike = ".", kind: str = "encoder") -> Path:
    """Create ``DEST/hpcprep-NAME/``, an installable plugin project with one stage of ``kind``; returns its path."""
    check_name(name)
    if kind not in KINDS:
        raise ScaffoldError(f"kind {kind!r}: choose one of {', '.join(KINDS)}")
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise ScaffoldError(f"{dest} is not a directory")
    target = dest / f"hpcprep-{name}"
    if target.exists() or target.is_symlink():
        raise ScaffoldError(f"{target} already exists; nothing was changed (choose another name or --dir)")
    try:
        dest.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".hpcprep-{name}-", dir=dest))
    except OSError as exc:
        raise ScaffoldError(f"cannot write in {dest}: {exc.strerror or exc}") from None
    try:
        templates = resources.files("hpcprep") / "templates" / "plugin"
        for part in ("common", kind):
            _render(templates / part, staging, _values(name, kind))
        os.rename(staging, target)
    except FileExistsError:
        raise ScaffoldError(f"{target} already exists; nothing was changed") from None
    except OSError as exc:
        raise ScaffoldError(f"cannot create {target}: {exc}") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _values(name: str, kind: str) -> dict[str, str]:
    from . import __version__

    description, dependencies = KINDS[kind]
    return {
        "name": name,
        "package": f"hpcprep_{name}",
        "dist": f"hpcprep-{name}",
        "description": description,
        "dependencies": ", ".join(f'"{d}"' for d in [f"hpcprep>={__version__}", *dependencies]),
    }


def _render(src, out: Path, values: dict[str, str]) -> None:
    """Copy the template tree ``src`` (a Traversable) into ``out``, filling placeholders."""
    for entry in sorted(src.iterdir(), key=lambda e: e.name):
        if entry.name.startswith(".") or entry.name == "__pycache__":
            continue
        name = RENAMES.get(entry.name.removesuffix(SUFFIX), entry.name.removesuffix(SUFFIX))
        name = name.format(**values)
        if entry.is_dir():
            (out / name).mkdir(exist_ok=True)  # a kind's folders lie over the common ones
            _render(entry, out / name, values)
            continue
        text = entry.read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        left = re.findall(r"\{\{\s*\w+\s*\}\}", text)
        if left:  # a template bug, not the user's
            raise RuntimeError(f"template {entry.name} has unknown placeholders {left}")
        (out / name).write_text(text, encoding="utf-8")
