"""Previews of a genomics run for ``hpcprep report``: GC content by window, the mean k-mer spectrum, and the
windows' embeddings projected on their first two principal components, coloured by label."""

from __future__ import annotations

import html

import numpy as np


def sections(run) -> list | None:
    from hpcprep.report import ReportSection, figure

    if not run.uses("genomics"):  # another domain's run (a protein's sequence is not DNA)
        return None
    sample = run.sample(["sequence", "kmer_counts", "label", *EMBEDDINGS])
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
    projected = _projection(sample)
    if projected is not None:
        out.append(projected)
    return out


#: Vector columns of the genomics encoders, in the order a preview picks the first present.
EMBEDDINGS = ("embedding", "spectrum")
MAX_LABELS = 10


def principal_plane(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of the rows of ``x`` on its first two principal components, and the share of the variance
    each explains."""
    centred = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    total = float((s**2).sum())
    share = (s[:2] ** 2) / total if total > 0 else np.zeros(2)
    return centred @ vt[:2].T, share


def _projection(sample):
    from hpcprep.report import ReportSection, figure

    column = next((c for c in EMBEDDINGS if c in sample.column_names), None)
    if column is None or sample.num_rows < 3:
        return None
    vectors = sample.column(column).combine_chunks()
    x = np.asarray(vectors.flatten().to_numpy(zero_copy_only=False), dtype=np.float64).reshape(len(vectors), -1)
    if x.shape[1] < 2:
        return None
    xy, share = principal_plane(x)
    labels = np.array(sample.column("label").to_pylist() if "label" in sample.column_names else [""] * len(x))
    labels = np.where(labels == "", "(no label)", labels)
    kinds, counts = np.unique(labels, return_counts=True)
    shown = set(kinds[np.argsort(-counts)][:MAX_LABELS])
    labels = np.array([lab if lab in shown else "(other)" for lab in labels])

    def scatter(ax):
        for lab in sorted(set(labels)):
            at = labels == lab
            ax.scatter(xy[at, 0], xy[at, 1], s=6, alpha=0.6, label=f"{lab} ({at.sum()})")
        ax.set_xlabel(f"PC1 ({share[0]:.0%} of the variance)")
        ax.set_ylabel(f"PC2 ({share[1]:.0%})")
        ax.set_title(f"{column} of {len(x):,} windows, first two principal components")
        ax.legend(fontsize=7, markerscale=2)

    means = "".join(
        f'<li>{html.escape(lab)}: PC1 <span data-key="genomics.pc1_mean.{html.escape(lab)}">'
        f'{xy[labels == lab, 0].mean():.4f}</span> ± <span data-key="genomics.pc1_sd.{html.escape(lab)}">'
        f"{xy[labels == lab, 0].std():.4f}</span></li>"
        for lab in sorted(set(labels))
    )
    body = figure(scatter, height=4.0) + (
        f'<p>PC1 and PC2 explain <span data-key="genomics.pc_share">{share.sum():.4f}</span> of the variance '
        f"of <code>{html.escape(column)}</code>.</p><ul>{means}</ul>"
    )
    return ReportSection("Embeddings", body)
