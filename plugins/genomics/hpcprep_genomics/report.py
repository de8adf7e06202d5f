"""Previews of a genomics run for ``hpcprep report``: GC content by window and the mean k-mer spectrum."""

from __future__ import annotations

import html

import numpy as np


def sections(run) -> list | None:
    from hpcprep.report import ReportSection, figure

    if not run.uses("genomics"):  # another domain's run (a protein's sequence is not DNA)
        return None
    sample = run.sample(["sequence", "kmer_counts"])
    if sample is None or "sequence" not in sample.column_names or not sample.num_rows:
        return None
    seqs = [s.upper() for s in sample.column("sequence").to_pylist() if s]
    gc = np.array([(s.count("G") + s.count("C")) / max(1, len(s) - s.count("N")) for s in seqs])

    def gc_hist(ax):
        ax.hist(gc, bins=40, range=(0, 1), color="#55a868")
        ax.set_xlabel("GC content of the window")
        ax.set_ylabel("windows")
        ax.set_title(f"GC content, {len(gc):,} windows sampled")

    body = figure(gc_hist) + f'<p>mean GC <span data-key="genomics.gc_mean">{gc.mean():.4f}</span></p>'
    out = [ReportSection("GC content by window", body)]
    if "kmer_counts" in sample.column_names:
        counts = sample.column("kmer_counts").combine_chunks()
        width = len(counts[0]) if len(counts) else 0
        if width and all(len(c) == width for c in counts.to_pylist()[:50]):
            flat = np.asarray(counts.flatten().to_numpy(zero_copy_only=False), dtype=np.float64).reshape(-1, width)
            k = int(round(np.log(width) / np.log(4)))
            mean = (flat / np.maximum(flat.sum(axis=1, keepdims=True), 1)).mean(axis=0)

            def spectrum(ax):
                ax.bar(np.arange(width), mean, width=1.0, color="#4c72b0")
                ax.set_xlabel(f"{k}-mer (base-4 code, A=0 C=1 G=2 T=3)")
                ax.set_ylabel("mean frequency")
                ax.set_title(f"mean {k}-mer spectrum")

            note = f"<p>{html.escape(str(len(flat)))} windows sampled</p>"
            out.append(ReportSection(f"{k}-mer spectrum", figure(spectrum) + note))
    return out
