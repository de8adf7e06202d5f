"""An OpenFOAM ``polyMesh``: points, faces, owner, neighbour and boundary patches.

Faces are stored as CSR (``face_offsets``, ``face_points``), the layout of OpenFOAM's
binary ``faceCompactList``. Faces ``0 .. n_internal-1`` are internal (they have a
neighbour); the rest belong to the boundary patches in order. The number of cells is the
``nCells`` the headers' ``note`` states, else one more than the largest owner or
neighbour label; either way every label is checked against it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from .foamfile import (
    FoamFile,
    FoamFileError,
    Tokenizer,
    find_file,
    is_int,
    read_face_list,
    read_foam_file,
    read_list,
)

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
    return read_foam_file(_path(directory, name))


def read_boundary(directory: str) -> list[Patch]:
    """The patches of ``directory/boundary``: ``N ( name { type ..; nFaces ..; startFace ..; } ... )``,
    the size ``N`` optional (older OpenFOAM and hand-written files leave it out)."""
    f = _open(directory, "boundary")
    tok = Tokenizer(f, f.body)
    start = tok.skip()
    count = None
    if tok.peek() != "(":
        count = tok.next()
        if count is None or not is_int(count):
            raise f.error(f"expected the list of patches (its size, or '('), found {count!r}", start)
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
    if count is not None and len(patches) != int(count):
        raise f.error(f"the boundary says {count} patches but lists {len(patches)}")
    return patches


def read_polymesh(directory: str) -> PolyMesh:
    """Read and check a polyMesh directory; ``FoamFileError`` names the file at fault.

    Every label is checked against the mesh sizes, and the sizes against the ``note``
    that OpenFOAM's writers put in the owner and neighbour headers: a wrong label must
    fail the case, not add cells (one neighbour label 5000 in a 36-cell mesh would
    otherwise make 5001 cells, almost all empty).
    """
    paths = {name: _path(directory, name) for name in MESH_FILES}  # a missing file fails before any parsing
    faces_file = read_foam_file(paths["faces"])
    face_offsets, face_points, _ = read_face_list(faces_file, faces_file.body)
    n_faces = len(face_offsets) - 1
    if n_faces == 0:
        raise faces_file.error("the mesh has no faces")
    per_face = (n_faces, f"the mesh has {n_faces} faces ({faces_file.path})")
    owner_file = read_foam_file(paths["owner"])
    owner, _ = read_list(owner_file, owner_file.body, "label", per_face)
    neighbour_file = read_foam_file(paths["neighbour"])
    neighbour, _ = read_list(neighbour_file, neighbour_file.body, "label", per_face)
    points_file = read_foam_file(paths["points"])
    # Faces refer to every point at least once (checkMesh calls an unused point an error), so the
    # number of labels in the faces bounds the number of points.
    used = (len(face_points), f"the faces use only {len(face_points)} point labels ({faces_file.path})")
    points, _ = read_list(points_file, points_file.body, "vector", used)
    patches = read_boundary(directory)

    if len(owner) != n_faces:
        raise owner_file.error(f"{len(owner)} owner labels for {n_faces} faces (faces: {faces_file.path})")
    neighbour = _internal_neighbours(neighbour_file, neighbour, n_faces)
    _check_points(points_file, points)
    _check_faces(faces_file, face_offsets, face_points, len(points), points_file.path)
    sizes = _stated_sizes(owner_file, neighbour_file)
    _check_stated_sizes(
        sizes, owner_file, points_file, faces_file, neighbour_file, len(points), n_faces, len(neighbour)
    )
    n_cells = _check_cells(owner_file, owner, neighbour_file, neighbour, sizes.get("nCells"))
    _check_patches(directory, patches, len(neighbour), n_faces)
    return PolyMesh(directory, points, face_offsets, face_points, owner, neighbour, n_cells, patches)


def _path(directory: str, name: str) -> str:
    path = find_file(directory, name)
    if path is None:
        raise FoamFileError(f"{os.path.join(directory, name)}: missing polyMesh file {name!r} (nor {name}.gz)")
    return path


def _internal_neighbours(f: FoamFile, neighbour: np.ndarray, n_faces: int) -> np.ndarray:
    # Older writers pad neighbour to every face with -1 on boundary faces.
    if len(neighbour) == n_faces and len(neighbour) and neighbour.min() < 0:
        n_int = int(np.argmax(neighbour < 0))
        if np.any(neighbour[n_int:] >= 0):
            raise f.error("a neighbour label after the first -1 (internal faces must come first)")
        neighbour = neighbour[:n_int]
    if len(neighbour) > n_faces:
        raise f.error(f"{len(neighbour)} neighbour labels for {n_faces} faces")
    return neighbour


def _check_points(f: FoamFile, points: np.ndarray) -> None:
    """Non-finite coordinates would give NaN centres and volumes that no file holds."""
    finite = np.isfinite(points).all(axis=1)
    if not finite.all():
        i = int(np.argmin(finite))
        shown = " ".join(repr(float(x)) for x in points[i])
        raise f.error(f"point {i} is ({shown}): coordinates must be finite numbers")


def _check_faces(f: FoamFile, face_offsets, face_points, n_points: int, points_path: str) -> None:
    bad = _first_bad_label(face_points, n_points)
    if bad >= 0:
        face = int(np.searchsorted(face_offsets, bad, side="right") - 1)
        raise f.error(
            f"face {face} uses point label {int(face_points[bad])}, out of range for {n_points} points ({points_path})"
        )
    sizes = np.diff(face_offsets)
    if len(sizes) and sizes.min() < 3:
        face = int(np.argmin(sizes))
        raise f.error(f"face {face} has {int(sizes[face])} points (a face needs at least 3)")


_NOTE_SIZE = re.compile(r"\b(nPoints|nCells|nFaces|nInternalFaces)\s*:\s*(\d+)")


def _stated_sizes(*files: FoamFile) -> dict[str, int]:
    """The mesh sizes in the headers' ``note`` ("nPoints:80 nCells:36 nFaces:141
    nInternalFaces:75", as blockMesh and every OpenFOAM mesh writer put it); files that
    state a size differently contradict each other."""
    sizes: dict[str, tuple[int, str]] = {}
    for f in files:
        for key, value in _NOTE_SIZE.findall(str(f.header.get("note", ""))):
            if key in sizes and sizes[key][0] != int(value):
                raise f.error(f"the header's note says {key}:{value}, but {sizes[key][1]} says {key}:{sizes[key][0]}")
            sizes[key] = (int(value), f.path)
    return {key: value for key, (value, _) in sizes.items()}


def _check_stated_sizes(sizes, note_file, points_file, faces_file, neighbour_file, n_points, n_faces, n_internal):
    for key, actual, f, what in (
        ("nPoints", n_points, points_file, "points"),
        ("nFaces", n_faces, faces_file, "faces"),
        ("nInternalFaces", n_internal, neighbour_file, "internal faces (neighbour labels)"),
    ):
        if key in sizes and sizes[key] != actual:
            raise f.error(f"{actual} {what}, but the header's note in {note_file.path} says {key}:{sizes[key]}")


def _check_cells(owner_file, owner, neighbour_file, neighbour, stated: int | None) -> int:
    """The number of cells, after checking every owner and neighbour label against it."""
    for f, arr, name in ((owner_file, owner, "owner"), (neighbour_file, neighbour, "neighbour")):
        if len(arr) and arr.min() < 0:
            i = int(np.argmin(arr))
            raise f.error(f"{name} label {int(arr[i])} of face {i} is negative")
        if stated is not None and len(arr) and arr.max() >= stated:
            i = int(np.argmax(arr >= stated))
            raise f.error(
                f"{name} label {int(arr[i])} of face {i} is out of range: the header's note says nCells:{stated}"
            )
    same = np.flatnonzero(owner[: len(neighbour)] == neighbour)
    if len(same):
        i = int(same[0])
        raise neighbour_file.error(f"face {i} has cell {int(neighbour[i])} as both owner and neighbour")
    largest = int(max(owner.max(), neighbour.max() if len(neighbour) else -1))
    n_cells = largest + 1 if stated is None else stated
    if stated is not None:  # the note is at fault, or labels that skip cells: the owner file states it
        f, why = owner_file, f"the header's note says nCells:{stated}"
    else:  # the largest label is the suspect
        f, name, arr = (
            (neighbour_file, "neighbour", neighbour)
            if len(neighbour) and neighbour.max() == largest
            else (owner_file, "owner", owner)
        )
        why = f"{name} label {largest} of face {int(np.argmax(arr == largest))} makes the mesh {n_cells} cells"
    # A closed cell has at least 4 faces, and a face closes at most two cells: more cells than
    # that allows, or a cell with fewer faces, means a wrong label even where no header states
    # nCells. (The bound is checked first so that a huge label does not size the count below.)
    most = (len(owner) + len(neighbour)) // 4
    if n_cells > most:
        raise f.error(f"{why}, more than {len(owner)} faces can close (at most {most}; a cell has at least 4 faces)")
    faces_per_cell = np.bincount(owner, minlength=n_cells) + np.bincount(neighbour, minlength=n_cells)
    thin = np.flatnonzero(faces_per_cell < 4)
    if len(thin):
        c = int(thin[0])
        raise f.error(f"{why}, but cell {c} has {int(faces_per_cell[c])} faces (a closed cell has at least 4)")
    return n_cells


def _check_patches(directory: str, patches: list[Patch], n_internal: int, n_faces: int) -> None:
    expect = n_internal
    for p in sorted(patches, key=lambda p: p.start):
        if p.start != expect or p.size < 0:
            raise FoamFileError(
                f"{os.path.join(directory, 'boundary')}: patch {p.name!r} starts at face {p.start} with "
                f"{p.size} faces; expected it to start at {expect} (boundary faces follow the "
                f"{n_internal} internal faces, patch after patch)"
            )
        expect = p.start + p.size
    if expect != n_faces:
        raise FoamFileError(
            f"{os.path.join(directory, 'boundary')}: the patches end at face {expect} but the mesh has {n_faces} faces"
        )


@njit(cache=True, nogil=True)
def _first_bad_label(labels, n_points):
    for i in range(labels.shape[0]):
        if labels[i] < 0 or labels[i] >= n_points:
            return i
    return -1
