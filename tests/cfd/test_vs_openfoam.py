"""``cfd.openfoam`` against OpenFOAM v1912 itself: cell centres and volumes from
``postProcess -funcs '(writeCellCentres writeCellVolumes)'`` on real tutorial meshes
(airFoil2D, naca0012; gzipped ASCII) and on a warped, graded two-block ``blockMesh`` mesh;
binary meshes from ``foamFormatConvert``; 64-bit labels from our own little writer.

OpenFOAM's output is written with 17 significant digits and parsed here with a few
regular expressions, independently of the reader under test. The OpenFOAM runs are made
once per session.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hpcprep_cfd.openfoam import fields, foamfile, geometry, polymesh
from hpcprep_cfd.openfoam.reader import OpenFoamReader

from tests.cfd import data
from tests.cfd.foam_case import CONTROL_DICT, FV_SCHEMES, FV_SOLUTION, openfoam_env
from tests.cfd.test_openfoam import read_records, write_binary_polymesh
from tests.conftest import require_tool

# Two hex blocks with non-coplanar corners (warped faces), an arc edge and strong grading.
BLOCK_MESH_DICT = """FoamFile { version 2.0; format ascii; class dictionary; object blockMeshDict; }
scale 1;
vertices
(
    (0 0 0) (2 0.3 0) (2.2 1.5 0.2) (-0.2 1.2 0)
    (0.1 0.2 1) (2.1 0.4 1.3) (2.4 1.7 1.1) (0 1.3 1.2)
    (4 0.5 0.1) (4.3 1.8 0.4) (4.1 0.6 1.2) (4.5 2.0 1.5)
);
blocks
(
    hex (0 1 2 3 4 5 6 7) (12 10 8) simpleGrading (2 0.5 3)
    hex (1 8 9 2 5 10 11 6) (10 10 8) simpleGrading (0.5 0.5 3)
);
edges ( arc 0 1 (1 -0.2 0) );
boundary
(
    inlet { type patch; faces ( (0 4 7 3) ); }
    outlet { type patch; faces ( (8 9 11 10) ); }
);
defaultPatch { name walls; type wall; }
"""


def foam(tool: str, case: Path, *args: str) -> None:
    exe = require_tool(tool)
    proc = subprocess.run([exe, "-case", str(case), *args], env=openfoam_env(), capture_output=True, text=True)
    if proc.returncode != 0 or "FOAM FATAL" in proc.stdout + proc.stderr:
        raise AssertionError(f"{tool} {' '.join(args)} failed on {case}:\n{(proc.stdout + proc.stderr)[-3000:]}")


def make_case(root: Path, mesh_dir: Path | None, fmt: str = "ascii") -> Path:
    """A minimal case in ``root``: the mesh files of ``mesh_dir`` (if any) and system/ files."""
    (root / "system").mkdir(parents=True)
    (root / "0").mkdir()  # postProcess writes into the first time directory (else into constant/)
    (root / "system" / "controlDict").write_text(CONTROL_DICT.format(fmt=fmt))
    (root / "system" / "fvSchemes").write_text(FV_SCHEMES)
    (root / "system" / "fvSolution").write_text(FV_SOLUTION)
    if mesh_dir is not None:
        dest = root / "constant" / "polyMesh"
        dest.mkdir(parents=True)
        for name in polymesh.MESH_FILES:
            src = foamfile.find_file(str(mesh_dir), name)
            assert src, f"{mesh_dir} lacks {name}"
            shutil.copy(src, dest / os.path.basename(src))
    return root


def parse_reference(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """internalField and the nonuniform patch values of an ASCII field written by OpenFOAM."""
    text = path.read_text()

    def numbers(start: int) -> np.ndarray:
        end = text.index("\n)\n", start)
        return np.array(text[start:end].replace("(", " ").replace(")", " ").split(), dtype=np.float64)

    m = re.search(r"internalField\s+nonuniform\s+List<(\w+)>\s*(\d+)\s*\(", text)
    assert m, f"no nonuniform internalField in {path}"
    width = 3 if m.group(1) == "vector" else 1
    internal = numbers(m.end()).reshape(-1, width).squeeze()
    assert len(internal) == int(m.group(2))
    patches = {}
    bf = text.index("boundaryField")
    for p in re.finditer(r"(\w+)\s*\{[^{}]*?value\s+nonuniform\s+List<\w+>\s*(\d+)\s*\(", text[bf:]):
        values = numbers(bf + p.end()).reshape(-1, width).squeeze()
        assert len(values) == int(p.group(2))
        patches[p.group(1)] = values
    return internal, patches


CASES = ("airFoil2D", "naca0012", "blockMesh")


@pytest.fixture(scope="session")
def references(tmp_path_factory):
    """name -> (case dir, reference centres, volumes, patch face centres), OpenFOAM run once."""
    require_tool("postProcess")
    out = {}
    for name in CASES:
        root = tmp_path_factory.mktemp(name) / name
        if name == "blockMesh":
            require_tool("blockMesh")
            make_case(root, None)
            (root / "system" / "blockMeshDict").write_text(BLOCK_MESH_DICT)
            foam("blockMesh", root)
        else:
            src = Path(data.case(name))
            mesh = src / "constant" / "polyMesh" if (src / "constant" / "polyMesh").is_dir() else src / "polyMesh"
            make_case(root, mesh)
        foam("postProcess", root, "-funcs", "(writeCellCentres writeCellVolumes)")
        centres, patch_centres = parse_reference(root / "0" / "C")
        volumes, _ = parse_reference(root / "0" / "V")
        out[name] = (root, centres, volumes, patch_centres)
    return out


def _mesh_size(points: np.ndarray) -> float:
    return float(np.linalg.norm(points.max(axis=0) - points.min(axis=0)))


@pytest.mark.parametrize("name", CASES)
def test_centres_and_volumes_match_openfoam(references, name):
    root, ref_c, ref_v, ref_patches = references[name]
    # through the reader, in several chunks, with patch records (fields off: 0/ holds C and V)
    rows = read_records(paths=[str(root)], chunk_size=3000, boundary=True, time="none")
    cells = [r for r in rows if r["kind"] == "cells"]
    assert [r["cell_start"] for r in cells] == list(range(0, len(ref_v), 3000))
    centres = np.concatenate([r["centres"] for r in cells]).reshape(-1, 3)
    volumes = np.concatenate([r["volumes"] for r in cells])
    mesh = polymesh.read_polymesh(str(root / "constant" / "polyMesh"))
    size = _mesh_size(mesh.points)
    assert volumes.shape == ref_v.shape and centres.shape == ref_c.shape
    rel_v = np.abs(volumes - ref_v) / np.abs(ref_v)
    rel_c = np.abs(centres - ref_c).max() / size
    print(f"{name}: {len(ref_v)} cells, max relative volume error {rel_v.max():.2e}, centre error / size {rel_c:.2e}")
    assert rel_v.max() < 1e-9
    assert rel_c < 1e-9
    # the patch records' face centres are OpenFOAM's C on the patches
    patches = {r["patch"]: r for r in rows if r["kind"] == "patch"}
    assert ref_patches and set(ref_patches) <= set(patches)
    for pname, ref in ref_patches.items():
        ours = patches[pname]["centres"].reshape(-1, 3)
        assert np.abs(ours - ref.reshape(-1, 3)).max() / size < 1e-9, pname
    # and the kernels agree with the plain NumPy reference
    from hpcprep_cfd.openfoam import reference

    fc, fa = reference.face_centres_areas(mesh.points, mesh.face_offsets, mesh.face_points)
    rc, rv = reference.cell_centres_volumes(fc, fa, mesh.owner, mesh.neighbour, mesh.n_cells)
    np.testing.assert_allclose(rv, volumes, rtol=1e-12)
    np.testing.assert_allclose(rc, centres, rtol=0, atol=1e-12 * size)


def test_blockmesh_faces_are_warped(references):
    """The graded blockMesh case is a real test of the face definitions: warped faces, skewed cells."""
    root = references["blockMesh"][0]
    mesh = polymesh.read_polymesh(str(root / "constant" / "polyMesh"))
    p = mesh.points[mesh.face_points.reshape(-1, 4)]
    # distance of the 4th point from the plane of the first three, relative to the face size
    n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    warp = np.abs(np.einsum("ij,ij->i", p[:, 3] - p[:, 0], n)) / np.linalg.norm(p[:, 2] - p[:, 0], axis=1)
    assert warp.max() > 1e-3
    vols = references["blockMesh"][2]
    assert vols.max() / vols.min() > 10  # graded


@pytest.mark.parametrize("name", ("naca0012", "blockMesh"))
def test_binary_from_foamformatconvert_equals_ascii(references, tmp_path, name):
    src = references[name][0]
    root = tmp_path / name
    shutil.copytree(src, root)
    (root / "system" / "controlDict").write_text(CONTROL_DICT.format(fmt="binary"))
    foam("foamFormatConvert", root)
    mesh_dir = root / "constant" / "polyMesh"
    faces = foamfile.read_foam_file(str(mesh_dir / "faces"))
    assert faces.binary and faces.cls == "faceCompactList"
    a = polymesh.read_polymesh(str(src / "constant" / "polyMesh"))
    b = polymesh.read_polymesh(str(mesh_dir))
    for attr in ("face_offsets", "face_points", "owner", "neighbour"):
        assert np.array_equal(getattr(a, attr), getattr(b, attr)), attr
    # OpenFOAM's own ASCII number reading is not always correctly rounded (ours is):
    # '-0.02839138953' becomes the double one below the nearest. Allow that last bit.
    np.testing.assert_array_max_ulp(a.points, b.points, maxulp=1)
    assert a.patches == b.patches and a.n_cells == b.n_cells
    # the binary C and V fields are OpenFOAM's 17-digit ASCII values, bit for bit
    ref_c, ref_patches = parse_reference(src / "0" / "C")
    c = fields.read_field(str(root / "0" / "C"), "C", b.n_cells, b.patches)
    assert foamfile.read_foam_file(str(root / "0" / "C")).binary
    assert np.array_equal(c.internal, ref_c)
    for pname, ref in ref_patches.items():
        assert np.array_equal(c.patches[pname], ref), pname
    v = fields.read_field(str(root / "0" / "V"), "V", b.n_cells)
    assert np.array_equal(v.internal, references[name][2])


def test_64bit_labels_binary(references, tmp_path):
    src = references["naca0012"][0] / "constant" / "polyMesh"
    mesh = polymesh.read_polymesh(str(src))
    out = tmp_path / "case64" / "constant" / "polyMesh"
    write_binary_polymesh(mesh, out, label_bits=64, gzip_files=("faces", "points"))
    header = foamfile.read_foam_file(str(out / "owner")).header
    assert "label=64" in header["arch"]
    back = polymesh.read_polymesh(str(out))
    for attr in ("points", "face_offsets", "face_points", "owner", "neighbour"):
        assert np.array_equal(getattr(mesh, attr), getattr(back, attr)), attr
    cc, cv, _, _ = geometry.mesh_geometry(
        back.points, back.face_offsets, back.face_points, back.owner, back.neighbour, back.n_cells
    )
    ref_v = references["naca0012"][2]
    assert np.abs(cv / ref_v - 1).max() < 1e-9
    # the reader takes the polyMesh directory itself, too
    rows = read_records(paths=[str(out)], chunk_size=10**6)
    assert len(rows) == 1 and rows[0]["case"] == "case64" and rows[0]["time"] == ""
    assert np.array_equal(rows[0]["centres"], cc.reshape(-1))
    assert OpenFoamReader.name == "cfd.openfoam"
