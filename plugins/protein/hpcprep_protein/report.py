"""Previews of a protein run for ``hpcprep report``: secondary-structure composition, a Ramachandran plot and a contact map."""

from __future__ import annotations

from collections import Counter

import numpy as np

#: DSSP's eight states and coil, in the order the plot shows them.
STATES = "HGIEBTSPC"


def sections(run) -> list | None:
    from hpcprep.report import ReportSection, figure, table

    if not run.uses("protein"):  # another domain's run (a protein's sequence is not DNA)
        return None
    sample = run.sample(["record_id", "ss8", "phi", "psi", "contact_src", "contact_dst", "length"])
    if sample is None or not sample.num_rows:
        return None
    out = []
    if "ss8" in sample.column_names:
        counts = Counter()
        for s in sample.column("ss8").to_pylist():
            counts.update("C" if ch in "- " else ch for ch in (s or ""))
        total = sum(counts.values()) or 1
        shares = [counts.get(ch, 0) / total for ch in STATES]

        def composition(ax):
            ax.bar(list(STATES), shares, color="#c44e52")
            ax.set_ylabel("share of residues")
            ax.set_title("secondary structure (DSSP, 8 states and coil)")

        rows = [[ch, (counts.get(ch, 0), f"protein.ss8.{ch}")] for ch in STATES]
        out.append(
            ReportSection("Secondary structure", figure(composition) + table(["state", "residues"], rows, "ss8"))
        )
    if "phi" in sample.column_names and "psi" in sample.column_names:
        phi = np.concatenate([np.asarray(x, dtype=float) for x in sample.column("phi").to_pylist() if x])
        psi = np.concatenate([np.asarray(x, dtype=float) for x in sample.column("psi").to_pylist() if x])
        ok = np.isfinite(phi) & np.isfinite(psi)

        def rama(ax):
            ax.scatter(phi[ok], psi[ok], s=1, alpha=0.3, color="#8172b2")
            ax.set_xlim(-180, 180)
            ax.set_ylim(-180, 180)
            ax.set_xlabel("phi (degrees)")
            ax.set_ylabel("psi (degrees)")
            ax.set_title(f"Ramachandran plot, {int(ok.sum()):,} residues")

        out.append(ReportSection("Backbone dihedrals", figure(rama, 4.5, 4.5)))
    if "contact_src" in sample.column_names and "contact_dst" in sample.column_names:
        src, dst = sample.column("contact_src")[0].as_py() or [], sample.column("contact_dst")[0].as_py() or []
        if src:
            n = max(max(src), max(dst)) + 1
            name = sample.column("record_id")[0].as_py() if "record_id" in sample.column_names else "the first chain"

            def contacts(ax):
                ax.scatter(src + dst, dst + src, s=1, color="#333333")
                ax.set_xlim(0, n)
                ax.set_ylim(n, 0)
                ax.set_aspect("equal")
                ax.set_title(f"contact map of {name}")

            out.append(ReportSection("Contacts", figure(contacts, 4.5, 4.5)))
    return out or None
