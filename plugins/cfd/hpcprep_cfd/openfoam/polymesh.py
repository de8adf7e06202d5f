"""An OpenFOAM ``polyMesh``: points, faces, owner, neighbour and boundary patches.

Faces are stored as CSR (``face_offsets``, ``face_points``), the layout of OpenFOAM's
binary ``faceCompactList``. Faces ``0 .. n_internal-1`` are internal (they have a
neighbour); the rest belong to the boundary patches in order. The number of cells is
one more than the largest owner or neighbour label.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from .foamfile import FoamFile, FoamFileError, Tokenizer, find_file, read_face_list, read_foam_file, read_list

MESH_FILES = ("points", "faces", "owner", "neighbour", "boundary")


@dataclass(frozen=True)
class Patch:
    name: str
    type: str
    start: int  # first face label
    size: int  # number of faces


@dataclass
class PolyMesh:
    directory: str
    points: np.ndarray  # (P, 3) float64
    face_offsets: np.ndarray  # (F + 1,) int64
    face_points: np.ndarray  # point labels, int64
    owner: np.ndarray  # (F,) int64
    neighbour: np.ndarray  # (n_internal,) int64
    n_cells: int
    patches: list[Patch] = field(default_factory=list)

    @property
    def n_faces(self) -> int:
        return len(self.owner)

    @property
    def n_internal(self) -> int:
        return len(self.neighbour)


def locate(path: str) -> tuple[str, str]:
    """(case root, polyMesh directory) for a case, a directory holding polyMesh/, or a polyMesh.

    The case root is where time directories are looked for.
    """
    path = os.path.abspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: not a directory (expected an OpenFOAM case or polyMesh directory)")
    for mesh in (os.path.join(path, "constant", "polyMesh"), os.path.join(path, "polyMesh")):
        if os.path.isdir(mesh):
            root = os.path.dirname(path) if os.path.basename(path) == "constant" else path
            return root, mesh
    has_mesh_files = any(find_file(path, name) for name in ("points", "faces", "owner"))
    if os.path.basename(path) == "polyMesh" or has_mesh_files:
        parent = os.path.dirname(path)
        root = os.path.dirname(parent) if os.path.basename(parent) == "constant" else parent
        return root, path
    raise FileNotFoundError(f"{path}: no constant/polyMesh, polyMesh/ or mesh files (points, faces, owner) in it")


def _open(directory: str, name: str) -> FoamFile:
    path = find_file(directory, name)
    if path is None:
        raise FoamFileError(f"{os.path.join(directory, name)}: missing polyMesh file {name!r} (nor {name}.gz)")
    return read_foam_file(path)


def read_boundary(directory: str) -> list[Patch]:
    """The patches of ``directory/boundary``: ``N ( name { type ..; nFaces ..; startFace ..; } ... )``."""
    f = _open(directory, "boundary")
    tok = Tokenizer(f, f.body)
    start = tok.skip()
    count = tok.next()
    if count is None or not count.isdigit():
        raise f.error(f"expected the number of patches, found {count!r}", start)
    if tok.next() != "(":
        raise f.error("expected '(' after the number of patches", tok.pos)
    patches = []
    while True:
        pos = tok.skip()
        name = tok.next()
        if name == ")":
            break
        if name is None:
            raise f.error("unexpected end of file inside the patch list", pos)
        if tok.next() != "{":
            raise f.error(f"expected '{{' after patch name {name!r}", tok.pos)
        entries = tok.dictionary(top=False)
        try:
            n_faces = int(entries["nFaces"][0])
            start_face = int(entries["startFace"][0])
        except (KeyError, IndexError, ValueError, TypeError):
            raise f.error(f"patch {name!r} lacks an integer nFaces or startFace", pos) from None
        ptype = entries.get("type", ["patch"])
        patches.append(Patch(name.strip('"'), str(ptype[0]) if ptype else "patch", start_face, n_faces))
    if len(patches) != int(count):
        raise f.error(f"the boundary says {count} patches but lists {len(patches)}")
    return patches


def read_polymesh(directory: str) -> PolyMesh:
    """Read and check a polyMesh directory; ``FoamFileError`` names the file at fault."""
    # owner first: it is the smallest file that tells us whether the mesh is complete
    owner_file = _open(directory, "owner")
    owner, _ = read_list(owner_file, owner_file.body, "label")
    neighbour_file = _open(directory, "neighbour")
    neighbour, _ = read_list(neighbour_file, neighbour_file.body, "label")
    points_file = _open(directory, "points")
    points, _ = read_list(points_file, points_file.body, "vector")
    faces_file = _open(directory, "faces")
    face_offsets, face_points, _ = read_face_list(faces_file, faces_file.body)
    patches = read_boundary(directory)

    n_faces = len(face_offsets) - 1
    if len(owner) != n_faces:
        raise owner_file.error(f"{len(owner)} owner labels for {n_faces} faces (faces: {faces_file.path})")
    # Older writers pad neighbour to every face with -1 on boundary faces.
    if len(neighbour) == n_faces and len(neighbour) and neighbour.min() < 0:
        n_int = int(np.argmax(neighbour < 0))
        if np.any(neighbour[n_int:] >= 0):
            raise neighbour_file.error("a neighbour label after the first -1 (internal faces must come first)")
        neighbour = neighbour[:n_int]
    if len(neighbour) > n_faces:
        raise neighbour_file.error(f"{len(neighbour)} neighbour labels for {n_faces} faces")
    if n_faces == 0:
        raise faces_file.error("the mesh has no faces")
    n_cells = int(max(owner.max(), neighbour.max() if len(neighbour) else -1)) + 1
    for f, arr, name in ((owner_file, owner, "owner"), (neighbour_file, neighbour, "neighbour")):
        if len(arr) and arr.min() < 0:
            i = int(np.argmin(arr))
            raise f.error(f"{name} label {int(arr[i])} of face {i} is negative")
    bad = _first_bad_label(face_points, len(points))
    if bad >= 0:
        face = int(np.searchsorted(face_offsets, bad, side="right") - 1)
        raise faces_file.error(
            f"face {face} uses point label {int(face_points[bad])}, out of range for {len(points)} points "
            f"({points_file.path})"
        )
    sizes = np.diff(face_offsets)
    if len(sizes) and sizes.min() < 3:
        face = int(np.argmin(sizes))
        raise faces_file.error(f"face {face} has {int(sizes[face])} points (a face needs at least 3)")
    n_int = len(neighbour)
    expect = n_int
    for p in sorted(patches, key=lambda p: p.start):
        if p.start != expect or p.size < 0:
            raise FoamFileError(
                f"{os.path.join(directory, 'boundary')}: patch {p.name!r} starts at face {p.start} with "
                f"{p.size} faces; expected it to start at {expect} (boundary faces follow the "
                f"{n_int} internal faces, patch after patch)"
            )
        expect = p.start + p.size
    if expect != n_faces:
        raise FoamFileError(
            f"{os.path.join(directory, 'boundary')}: the patches end at face {expect} but the mesh has {n_faces} faces"
        )
    return PolyMesh(directory, points, face_offsets, face_points, owner, neighbour, n_cells, patches)


@njit(cache=True, nogil=True)
def _first_bad_label(labels, n_points):
    for i in range(labels.shape[0]):
        if labels[i] < 0 or labels[i] >= n_points:
            return i
    return -1
