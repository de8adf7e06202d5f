"""A small structured OpenFOAM case written from scratch: the ``cfd.openfoam`` reader's
examples for the test kit, and a case whose cell centres and volumes are known exactly
for tests (``box_mesh`` gives the arrays, ``write_box_case`` the case folder)."""

from __future__ import annotations

import os

import numpy as np

_BANNER = "FoamFile\n{{\n    version 2.0;\n    format ascii;\n    class {cls};\n    object {obj};\n}}\n\n"


def _write(path: str, cls: str, body: str) -> None:
    with open(path, "w") as f:
        f.write(_BANNER.format(cls=cls, obj=os.path.basename(path)) + body)


def box_mesh(n: tuple[int, int, int], size=(1.0, 1.0, 1.0)):
    """A structured hex mesh in OpenFOAM order: (points, faces (F, 4), owner, neighbour, patches).

    Internal faces come first, sorted by owner then neighbour; then one patch per side
    (xmin, xmax, ymin, ymax, zmin, zmax) with outward faces. Cell (i, j, k) is
    i + nx (j + ny k).
    """
    nx, ny, nz = n
    xs, ys, zs = (np.linspace(0.0, s, m + 1) for s, m in zip(size, n, strict=True))
    pts = np.array([(x, y, z) for z in zs for y in ys for x in xs])

    def pid(i, j, k):
        return i + (nx + 1) * (j + (ny + 1) * k)

    def cid(i, j, k):
        return i + nx * (j + ny * k)

    def xface(i, j, k):  # normal +x
        return [pid(i, j, k), pid(i, j + 1, k), pid(i, j + 1, k + 1), pid(i, j, k + 1)]

    def yface(i, j, k):  # normal +y
        return [pid(i, j, k), pid(i, j, k + 1), pid(i + 1, j, k + 1), pid(i + 1, j, k)]

    def zface(i, j, k):  # normal +z
        return [pid(i, j, k), pid(i + 1, j, k), pid(i + 1, j + 1, k), pid(i, j + 1, k)]

    faces, owner, neighbour = [], [], []
    for k in range(nz):
        for j in range(ny):
            for i in range(nx):
                c = cid(i, j, k)
                for di, dj, dk, face in ((1, 0, 0, xface), (0, 1, 0, yface), (0, 0, 1, zface)):
                    if i + di < nx and j + dj < ny and k + dk < nz:
                        faces.append(face(i + di, j + dj, k + dk))
                        owner.append(c)
                        neighbour.append(cid(i + di, j + dj, k + dk))
    patches = []
    sides = (
        ("xmin", [(0, j, k) for k in range(nz) for j in range(ny)], xface, True, (0, 0, 0)),
        ("xmax", [(nx, j, k) for k in range(nz) for j in range(ny)], xface, False, (-1, 0, 0)),
        ("ymin", [(i, 0, k) for k in range(nz) for i in range(nx)], yface, True, (0, 0, 0)),
        ("ymax", [(i, ny, k) for k in range(nz) for i in range(nx)], yface, False, (0, -1, 0)),
        ("zmin", [(i, j, 0) for j in range(ny) for i in range(nx)], zface, True, (0, 0, 0)),
        ("zmax", [(i, j, nz) for j in range(ny) for i in range(nx)], zface, False, (0, 0, -1)),
    )
    for name, where, face, flip, shift in sides:
        start = len(faces)
        for i, j, k in where:
            f = face(i, j, k)
            faces.append(f[::-1] if flip else f)
            owner.append(cid(i + shift[0], j + shift[1], k + shift[2]))
        patches.append((name, start, len(faces) - start))
    return pts, np.array(faces), np.array(owner), np.array(neighbour), patches


def write_box_case(case: str, n=(2, 2, 2), size=(1.0, 1.0, 1.0)) -> None:
    """An ASCII case: constant/polyMesh of ``box_mesh`` and 0/T (nonuniform), 0/U (uniform)."""
    pts, faces, owner, neighbour, patches = box_mesh(n, size)
    mesh = os.path.join(case, "constant", "polyMesh")
    os.makedirs(mesh, exist_ok=True)
    os.makedirs(os.path.join(case, "0"), exist_ok=True)
    _write(
        os.path.join(mesh, "points"),
        "vectorField",
        f"{len(pts)}\n(\n" + "".join(f"({x!r} {y!r} {z!r})\n" for x, y, z in pts.tolist()) + ")\n",
    )
    _write(
        os.path.join(mesh, "faces"),
        "faceList",
        f"{len(faces)}\n(\n" + "".join(f"4({' '.join(map(str, f))})\n" for f in faces) + ")\n",
    )
    for name, arr in (("owner", owner), ("neighbour", neighbour)):
        _write(os.path.join(mesh, name), "labelList", f"{len(arr)}\n(\n" + "\n".join(map(str, arr)) + "\n)\n")
    body = (
        f"{len(patches)}\n(\n"
        + "".join(
            f"    {name}\n    {{\n        type patch;\n        nFaces {size_};\n        startFace {start};\n    }}\n"
            for name, start, size_ in patches
        )
        + ")\n"
    )
    _write(os.path.join(mesh, "boundary"), "polyBoundaryMesh", body)
    n_cells = int(np.prod(n))
    bf_t = "".join(
        f"    {name} {{ type fixedValue; value uniform {i}; }}\n"
        if i % 2 == 0
        else f"    {name} {{ type zeroGradient; }}\n"
        for i, (name, _, _) in enumerate(patches)
    )
    values = " ".join(repr(float(v)) for v in np.arange(n_cells) * 0.5)
    _write(
        os.path.join(case, "0", "T"),
        "volScalarField",
        f"dimensions [0 0 0 1 0 0 0];\ninternalField nonuniform List<scalar> {n_cells}({values});\n"
        f"boundaryField\n{{\n{bf_t}}}\n",
    )
    _write(
        os.path.join(case, "0", "U"),
        "volVectorField",
        'dimensions [0 1 -1 0 0 0 0];\ninternalField uniform (1 2 3);\nboundaryField\n{\n    ".*" { type zeroGradient; }\n}\n',
    )
