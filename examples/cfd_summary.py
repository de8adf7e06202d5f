"""CFD example, last step: what came out of examples/cfd_geometry.toml.

    python examples/cfd_summary.py [out/cfd]

Prints one line per mesh (triangles, health before repair, what repair changed, signed
volume, the share of SDF-grid nodes inside), the nearest shape of each procedural shape
by descriptor, the VTK files for ParaView and the errors the run set aside. Writes the
record id of the procedural sphere to ``<out>_query_id.txt`` (beside
the run's folder: a run's folder holds only what the run wrote) for ``hpcprep search --id``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

COLUMNS = [
    "source",
    "record_id",
    "name",
    "n_faces",
    "watertight",
    "boundary_edges",
    "inside_out",
    "signed_volume",
    "repairs",
    "sdf_grid",
    "descriptor",
]


def main(out: Path) -> None:
    rows = sorted(pq.read_table(out / "table", columns=COLUMNS).to_pylist(), key=lambda r: Path(r["source"]).name)
    print(f"{'file':<26} {'triangles':>9} {'watertight':>10} {'open edges':>10} {'volume':>12} {'inside':>7}  repairs")
    for r in rows:
        inside = float(np.mean(np.asarray(r["sdf_grid"]) < 0))
        print(
            f"{Path(r['source']).name:<26} {r['n_faces']:>9} {str(r['watertight']):>10} {r['boundary_edges']:>10} "
            f"{r['signed_volume']:>12.5g} {inside:>7.3f}  {r['repairs']}"
        )

    names = [Path(r["source"]).name for r in rows]
    vectors = np.asarray([r["descriptor"] for r in rows], dtype=np.float64)
    dist = np.linalg.norm(vectors[:, None] - vectors[None], axis=2)
    np.fill_diagonal(dist, np.inf)
    print("nearest shape by descriptor (L2):")
    for i, name in enumerate(names):
        j = int(np.argmin(dist[i]))
        print(f"  {name:<26} -> {names[j]:<26} {dist[i, j]:.4f}")
    sphere = [r["record_id"] for r in rows if Path(r["source"]).name == "sphere.stl"]
    if sphere:
        query_id_file(out).write_text(sphere[0] + "\n")

    vtk = sorted(p.name for p in (out / "vtk").glob("*") if p.suffix in {".vtp", ".vti", ".vtu", ".pvd"})
    print(
        f"VTK files for ParaView: {len(vtk)} in {out / 'vtk'} (open the .pvd: {[v for v in vtk if v.endswith('.pvd')]})"
    )
    manifest = json.loads((out / "manifest.json").read_text())
    c = manifest["counts"]
    print(f"inputs {c['inputs']} = outputs {c['outputs']} + errors {c['errors']}")
    for err in manifest["errors"]["first"]:
        print(f"  error: {Path(err['source']).name}: {err['message']}")


def query_id_file(out: Path) -> Path:
    """Where the query's record id goes: beside the run's folder, not in it (``hpcprep run
    --overwrite`` refuses to delete files it did not write)."""
    return out.with_name(out.name + "_query_id.txt")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "out/cfd"))
