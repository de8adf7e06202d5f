"""volScalarField / volVectorField files of a time directory: cell values and patch values.

``internalField`` is ``uniform v`` (expanded to every cell) or ``nonuniform List<T> N(...)``
(ASCII or binary). A patch's values come from its ``value`` entry when it has one
(fixedValue, calculated, most written fields); patches without it (zeroGradient,
empty, ...) get no values, which the reader turns into NaN.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import numpy as np
from hpcprep.compressed import DamagedGzip, read_head

from .foamfile import FoamFile, FoamFileError, read_foam_file, top_dictionary
from .polymesh import Patch

#: Field classes the reader turns into columns, and numbers per value.
FIELD_CLASSES = {"volScalarField": ("scalar", 1), "volVectorField": ("vector", 3)}

_CLASS = re.compile(rb"\bclass\s+([A-Za-z0-9_<>:]+)\s*;")


@dataclass
class FieldData:
    name: str
    kind: str  # scalar | vector
    path: str
    internal: np.ndarray  # (n_cells,) or (n_cells, 3), float64
    patches: dict[str, np.ndarray | None] = field(default_factory=dict)


def time_directories(root: str) -> list[str]:
    """Names of the time directories of a case, in time order."""
    try:
        names = os.listdir(root)
    except OSError:
        return []
    out = []
    for name in names:
        try:
            t = float(name)
        except ValueError:
            continue
        if os.path.isdir(os.path.join(root, name)):
            out.append((t, name))
    return [name for _, name in sorted(out)]


def field_class(path: str) -> str:
    """The ``class`` of an OpenFOAM file from its first few kilobytes ("" if none)."""
    try:
        head = read_head(path, 4096)
    except DamagedGzip as exc:
        # Not "": a damaged field would then be passed over as if it were no field.
        raise FoamFileError(str(exc)) from None
    except OSError:
        return ""
    m = _CLASS.search(head)
    return m.group(1).decode() if m else ""


def list_fields(time_dir: str) -> dict[str, tuple[str, str]]:
    """name -> (path, class) for every file of ``time_dir`` (``.gz`` stripped from names)."""
    out: dict[str, tuple[str, str]] = {}
    for entry in sorted(os.listdir(time_dir)):
        path = os.path.join(time_dir, entry)
        if not os.path.isfile(path):
            continue
        name = entry[:-3] if entry.endswith(".gz") else entry
        if name in out and not entry.endswith(".gz"):
            continue  # plain and gzip copies: keep the plain one, as OpenFOAM does
        out[name] = (path, field_class(path))
    return out


def _value(f: FoamFile, tokens: list, kind: str, width: int, size: int, what: str, top: dict, unit: str) -> np.ndarray:
    """The values of a ``uniform`` / ``nonuniform`` entry, expanded to ``size`` rows."""
    if len(tokens) == 1 and isinstance(tokens[0], str) and tokens[0].startswith("$"):
        ref = tokens[0][1:]
        if ref not in top or isinstance(top[ref], dict):
            raise f.error(f"{what}: cannot resolve {tokens[0]} (only entries of the same file are looked up)")
        tokens = top[ref]
    if not tokens:
        raise f.error(f"{what} is empty")
    head = tokens[0]
    if isinstance(head, str) and head == "uniform" and len(tokens) == 2:
        v = tokens[1]
        if isinstance(v, str) and v.startswith("$") and v[1:] in top and not isinstance(top[v[1:]], dict):
            ref = top[v[1:]]
            v = ref[0] if len(ref) == 1 else ref
        try:
            arr = np.asarray([float(x) for x in (v if isinstance(v, list) else [v])], dtype=np.float64)
        except (TypeError, ValueError):
            raise f.error(f"{what}: uniform value {v!r} is not a {kind}") from None
        if arr.size != width:
            raise f.error(f"{what}: uniform value has {arr.size} components, a {kind} has {width}")
        out = np.broadcast_to(arr, (size, width)).copy()
        return out[:, 0] if width == 1 else out
    if isinstance(head, str) and head == "nonuniform" and len(tokens) == 2 and isinstance(tokens[1], np.ndarray):
        arr = tokens[1].astype(np.float64, copy=False)
        got_width = 1 if arr.ndim == 1 else arr.shape[1]
        if got_width != width:
            got = {1: "scalars", 3: "vectors", 6: "symmTensors", 9: "tensors"}.get(got_width, "values")
            raise f.error(f"{what}: a list of {got} in a {kind} field")
        if len(arr) != size:
            raise f.error(f"{what} has {len(arr)} values but {unit}")
        return arr
    if isinstance(head, str) and head == "nonuniform" and len(tokens) == 2 and tokens[1] == []:
        if size != 0:
            raise f.error(f"{what} has 0 values but {unit}")
        return np.zeros((0, width)) if width > 1 else np.zeros(0)
    shown = " ".join(t if isinstance(t, str) else "(...)" for t in tokens)[:60]
    raise f.error(f"{what}: expected 'uniform <value>' or 'nonuniform List<{kind}> N(...)', found {shown!r}")


def _patch_entry(boundary: dict, name: str, groups: set[str]) -> dict | None:
    if name in boundary and isinstance(boundary[name], dict):
        return boundary[name]
    for key, entry in boundary.items():
        if not isinstance(entry, dict):
            continue
        if key in groups:
            return entry
        pattern = key
        try:
            if re.fullmatch(pattern, name):
                return entry
        except re.error:
            continue
    return None


def read_field(path: str, name: str, n_cells: int, patches: list[Patch] | None = None) -> FieldData:
    """A vol field's cell values (checked against ``n_cells``) and, when ``patches`` is given,
    each patch's ``value`` (None where the patch has none)."""
    f = read_foam_file(path)
    cls = f.cls
    if cls not in FIELD_CLASSES:
        raise f.error(f"class {cls!r} is not a volScalarField or volVectorField")
    kind, width = FIELD_CLASSES[cls]
    longest = max([n_cells, *(p.size for p in patches or ())])
    top = top_dictionary(f, (longest, f"the mesh has {n_cells} cells and no patch has more faces"))
    if "internalField" not in top:
        raise f.error("no internalField entry")
    internal = _value(
        f, top["internalField"], kind, width, n_cells, "internalField", top, f"the mesh has {n_cells} cells"
    )
    if len(internal) != n_cells:
        raise f.error(f"internalField has {len(internal)} values but the mesh has {n_cells} cells")
    out = FieldData(name, kind, f.path, internal)
    if patches is None:
        return out
    boundary = top.get("boundaryField", {})
    if not isinstance(boundary, dict):
        raise f.error("boundaryField is not a { } block")
    for p in patches:
        entry = _patch_entry(boundary, p.name, {p.type})
        if entry is None or "value" not in entry:
            out.patches[p.name] = None
            continue
        out.patches[p.name] = _value(
            f, entry["value"], kind, width, p.size, f"patch {p.name!r} value", top, f"the patch has {p.size} faces"
        )
    return out
