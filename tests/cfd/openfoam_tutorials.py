"""The OpenFOAM tutorial meshes of Debian's ``openfoam-examples``, and OpenFOAM's own cell
centres and volumes for them (used by ``test_openfoam_tutorials.py``).

A case is either one that ships its mesh (a ``polyMesh`` directory with ``owner``, gzipped
or not) or one whose ``system/`` holds a ``blockMeshDict`` (gzipped or not, or an m4
template that ``m4`` expands first, as the tutorial's Allrun does). Which blockMesh cases the test
runs, and why the others are left out, is in ``openfoam_tutorials.toml``, written by the
survey this module runs as a script::

    WM_PROJECT_DIR=/usr/share/openfoam python -m tests.cfd.openfoam_tutorials

The survey meshes every blockMesh case (two processes, a few minutes) and keeps those that
build and have at most ``MAX_CELLS`` cells; it lists every other case with its reason. The
test checks the list against the installed package, so a case cannot drop out unnoticed.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tests.cfd.foam_case import CONTROL_DICT, FV_SCHEMES, FV_SOLUTION, openfoam_env

TUTORIALS = Path("/usr/share/doc/openfoam-examples/examples")
LIST_FILE = Path(__file__).with_name("openfoam_tutorials.toml")
#: blockMesh cases above this many cells are left out: meshing them, running postProcess on
#: them and reading them costs more than the test's share of CI time (about 90 s on 2 cores).
MAX_CELLS = 10_000
#: Seconds one OpenFOAM tool may take on one case before the case counts as failed.
TOOL_TIMEOUT_S = 120

# -- finding the cases ------------------------------------------------------------------------


def shipped_meshes() -> dict[str, Path]:
    """name (path below the tutorials) -> polyMesh directory, for every mesh the package ships."""
    out = {}
    for mesh in sorted(TUTORIALS.rglob("polyMesh")):
        if mesh.is_dir() and any((mesh / n).exists() for n in ("owner", "owner.gz")):
            case = mesh.parent.parent if mesh.parent.name == "constant" else mesh.parent
            out[str(case.relative_to(TUTORIALS))] = mesh
    return out


#: The names a case's blockMeshDict has in system/: itself, gzipped, or an m4 template its
#: Allrun expands first (``m4 system/blockMeshDict.m4 > system/blockMeshDict``).
MESH_DICTS = ("blockMeshDict", "blockMeshDict.gz", "blockMeshDict.m4", "blockMeshDict.m4.gz")


def blockmesh_cases() -> dict[str, str | None]:
    """name -> None for every case with a ``system/blockMeshDict`` (see ``MESH_DICTS``), or ->
    why it cannot be meshed as it stands for cases whose blockMeshDict comes in another form."""
    out: dict[str, str | None] = {}
    for path in sorted(TUTORIALS.rglob("blockMeshDict*")):
        system = next((p for p in path.parents if p.name == "system"), None)
        if system is None or not path.is_file():
            continue  # e.g. angledDuct/common/blockMeshDict.m4: a piece other cases' Allrun uses
        name = str(system.parent.relative_to(TUTORIALS))
        if path.parent == system and path.name in MESH_DICTS:
            out[name] = None
            continue
        if path.parent != system and path.parent.name == "backgroundMeshDecomposition":
            why = "its blockMeshDict is foamyHexMesh's background mesh for decomposition, not a case mesh"
        elif path.parent != system:
            why = f"multi-region: one blockMeshDict per region (system/{path.parent.name}/), meshed with -region"
        else:
            why = f"no system/blockMeshDict; its Allrun picks a variant ({path.name}) with -dict or copies one"
        out.setdefault(name, why)
    return out


# -- running OpenFOAM -------------------------------------------------------------------------


def _tool(tool: str, case: Path, *args: str) -> str | None:
    """Run an OpenFOAM tool on ``case``; None if it worked, else the tail of its log."""
    try:
        proc = subprocess.run(
            [tool, "-case", str(case), *args],
            env=openfoam_env(),
            capture_output=True,
            text=True,
            timeout=TOOL_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return f"{tool} took more than {TOOL_TIMEOUT_S} s"
    log = proc.stdout + proc.stderr
    if proc.returncode != 0 or "FOAM FATAL" in log:
        return log[-3000:] or f"{tool} exited with {proc.returncode}"
    return None


def _write_system(root: Path) -> None:
    system = root / "system"
    system.mkdir(parents=True, exist_ok=True)
    for name, text in (
        ("controlDict", CONTROL_DICT.format(fmt="ascii")),
        ("fvSchemes", FV_SCHEMES),
        ("fvSolution", FV_SOLUTION),
    ):
        (system / f"{name}.gz").unlink(missing_ok=True)  # the tutorial's gzipped copy: ours is the only one
        (system / name).write_text(text)
    (root / "0").mkdir(exist_ok=True)  # postProcess writes C and V into the first time directory


def prepare(name: str, dest: Path, mesh: Path | None = None) -> Path:
    """A copy of case ``name`` in ``dest`` with our system files: its shipped ``mesh``, or
    (``mesh`` None) what blockMesh needs, to be meshed by ``build``."""
    src = TUTORIALS / name
    if mesh is not None:
        shutil.copytree(mesh, dest / "constant" / "polyMesh", ignore=shutil.ignore_patterns("sets", "cells*"))
    else:
        # blockMesh reads system/ and, for projected edges and faces, geometry in constant/
        for sub in ("system", "constant"):
            if (src / sub).is_dir():
                shutil.copytree(src / sub, dest / sub, ignore=shutil.ignore_patterns("polyMesh"))
    _write_system(dest)
    return dest


def make_mesh(case: Path) -> str | None:
    """blockMesh on a prepared case, after m4 where the case has only the m4 template (as its
    Allrun does, from the case directory, so that m4's include() finds what it names)."""
    system = case / "system"
    if not any((system / name).exists() for name in ("blockMeshDict", "blockMeshDict.gz")):
        template = system / "blockMeshDict.m4"
        if not template.exists():
            template.write_bytes(gzip.decompress((system / "blockMeshDict.m4.gz").read_bytes()))
        with open(system / "blockMeshDict", "wb") as out:
            proc = subprocess.run(["m4", "system/blockMeshDict.m4"], cwd=case, stdout=out, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            return f"m4: {proc.stderr.decode(errors='replace')[-2000:]}"
    failed = _tool("blockMesh", case)
    return "blockMesh: " + failed if failed else None


def build(case: Path, blockmesh: bool) -> str | None:
    """blockMesh (where the case needs it), then postProcess for C and V; None or the failure."""
    if blockmesh:
        failed = make_mesh(case)
        if failed:
            return failed
    failed = _tool("postProcess", case, "-funcs", "(writeCellCentres writeCellVolumes)")
    return "postProcess: " + failed if failed else None


def build_all(cases: dict[str, tuple[Path, bool]], workers: int) -> dict[str, str | None]:
    """``build`` for many cases at once (OpenFOAM's tools are single-threaded)."""
    with ThreadPoolExecutor(max(1, workers)) as pool:
        done = pool.map(lambda item: build(*item), cases.values())
        return dict(zip(cases, done, strict=True))


def internal_field(path: Path) -> np.ndarray | tuple[float, ...]:
    """The internalField of an ASCII field OpenFOAM wrote, parsed with plain text operations,
    independently of the reader under test: an array for ``nonuniform List<T> N(...)``, the
    value's numbers for ``uniform v`` (OpenFOAM writes that when every cell has the same value)."""
    text = path.read_text()
    m = re.search(r"internalField\s+uniform\s+\(?([^;()]*)\)?\s*;", text)
    if m is not None:
        return tuple(float(x) for x in m.group(1).split())
    m = re.search(r"internalField\s+nonuniform\s+List<(\w+)>\s*(\d+)\s*\(", text)
    if m is None:
        raise AssertionError(f"no internalField in {path}")
    end = text.index("\n)\n", m.end())
    values = np.array(text[m.end() : end].replace("(", " ").replace(")", " ").split(), dtype=np.float64)
    values = values.reshape(int(m.group(2)), -1)
    return values[:, 0] if m.group(1) == "scalar" else values


def centres_and_volumes(case: Path) -> tuple[np.ndarray, np.ndarray]:
    """OpenFOAM's C (n, 3) and V (n,) of a post-processed case. A uniform field stands for
    every cell; centres are uniform only in a one-cell mesh (two cells never share one)."""
    c, v = internal_field(case / "0" / "C"), internal_field(case / "0" / "V")
    n = len(c) if isinstance(c, np.ndarray) else 1
    if not isinstance(c, np.ndarray):
        c = np.array([c], dtype=np.float64)
    if not isinstance(v, np.ndarray):
        v = np.full(n, v[0])
    return c, v


def cells_of(case: Path) -> int:
    """The number of cells blockMesh wrote (the ``note`` of the owner header)."""
    head = (case / "constant" / "polyMesh" / "owner").read_text(errors="replace")[:3000]
    m = re.search(r"nCells:\s*(\d+)", head)
    if m is None:
        raise AssertionError(f"{case}: no nCells in the owner header")
    return int(m.group(1))


def load_list() -> dict:
    return tomllib.loads(LIST_FILE.read_text())


# -- the survey that writes openfoam_tutorials.toml --------------------------------------------


def _reason(log: str) -> str:
    if log.startswith("m4:"):
        return f"m4 fails on its blockMeshDict.m4: {log[3:].strip()[:200]}"
    if "administrator rights" in log or "codeStream" in log:
        return "blockMeshDict uses #codeStream/#calc: OpenFOAM compiles C++ at run time (refused as root; needs a compiler and OpenFOAM's headers)"
    m = re.search(r'Cannot open include file "([^"]+)"', log)
    if m:
        return f"blockMeshDict includes {Path(m.group(1)).name}, which the tutorial's Allrun makes first"
    m = re.search(r"FOAM FATAL[^\n]*\n+([^\n]+)", log)
    return f"blockMesh fails: {m.group(1).strip() if m else log[-200:]}"


def survey(work: Path, workers: int = 2) -> str:
    """Mesh every blockMesh case; the text of ``openfoam_tutorials.toml``."""
    shipped = shipped_meshes()
    candidates = blockmesh_cases()
    left_out = {name: why for name, why in candidates.items() if why}
    to_mesh = [name for name, why in candidates.items() if why is None]

    def mesh_one(name: str) -> tuple[str, int | None, str | None]:
        dest = work / name.replace("/", "__")
        shutil.rmtree(dest, ignore_errors=True)
        prepare(name, dest)
        failed = make_mesh(dest)
        cells = None if failed else cells_of(dest)
        shutil.rmtree(dest, ignore_errors=True)
        return name, cells, failed

    included = {}
    with ThreadPoolExecutor(workers) as pool:
        for name, cells, failed in pool.map(mesh_one, to_mesh):
            if failed:
                left_out[name] = _reason(failed)
            elif cells > MAX_CELLS:
                left_out[name] = f"{cells} cells: over the {MAX_CELLS}-cell cap that keeps the test within its CI time"
            else:
                included[name] = cells
    lines = [
        "# The OpenFOAM tutorial cases test_openfoam_tutorials.py reads through `hpcprep run`, written by",
        "# `python -m tests.cfd.openfoam_tutorials` (see its docstring) from Debian's openfoam-examples",
        "# (v1912). [shipped]: cases that ship a polyMesh (all of them are read); [blockMesh]: cases whose",
        f"# system/blockMeshDict meshes, with at most {MAX_CELLS} cells (name = cells); [left_out]: why.",
        f"max_cells = {MAX_CELLS}",
        "",
        "[shipped]",
        *(f'"{name}" = true' for name in sorted(shipped)),
        "",
        "[blockMesh]",
        *(f'"{name}" = {cells}' for name, cells in sorted(included.items())),
        "",
        "[left_out]",
        *(f'"{name}" = {json.dumps(why)}' for name, why in sorted(left_out.items())),  # TOML takes JSON's escapes
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        LIST_FILE.write_text(survey(Path(tmp), workers=os.cpu_count() or 2))
    print(f"wrote {LIST_FILE}")
