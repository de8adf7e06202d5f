"""Previews of a CFD run for ``hpcprep report``: mesh health per file, signed distances, cell-feature histograms."""

from __future__ import annotations

import numpy as np

HEALTH = ("n_faces", "watertight", "boundary_edges", "non_manifold_edges", "degenerate_faces", "repairs")


def sections(run) -> list | None:
    from hpcprep.report import ReportSection, figure, table

    if not run.uses("cfd"):  # another domain's run (a protein's sequence is not DNA)
        return None
    sample = run.sample(["source", "name", *HEALTH, "sdf", "nd_p"])
    if sample is None or not sample.num_rows:
        return None
    out = []
    names = sample.column_names
    if "n_faces" in names:
        cols = [c for c in HEALTH if c in names]
        rows = []
        for r in sample.select(["source", *cols]).to_pylist():
            rows.append([r["source"].rsplit("/", 1)[-1], *[r[c] for c in cols]])
        out.append(ReportSection("Mesh health", table(["file", *cols], rows, "health")))
    if "sdf" in names:
        sdf = np.concatenate([np.asarray(x, dtype=float) for x in sample.column("sdf").to_pylist() if x])

        def hist(ax):
            ax.hist(sdf, bins=60, color="#4c72b0")
            ax.axvline(0.0, color="black", linewidth=1)
            ax.set_xlabel("signed distance (negative inside)")
            ax.set_ylabel("query points")
            ax.set_title(f"SDF query points, {len(sdf):,} sampled")

        out.append(ReportSection("Signed distances", figure(hist)))
    if "nd_p" in names:
        cp = np.concatenate([np.asarray(x, dtype=float) for x in sample.column("nd_p").to_pylist() if x])

        def cp_hist(ax):
            ax.hist(cp, bins=60, color="#dd8452")
            ax.set_xlabel("Cp")
            ax.set_ylabel("cells")
            ax.set_title(f"pressure coefficient, {len(cp):,} cells")

        out.append(ReportSection("Cell features", figure(cp_hist)))
    return out or None
