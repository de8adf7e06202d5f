"""The genomics previews of ``hpcprep report``: the embeddings' principal plane, on planted data and on a real
run over two genomes of different GC content."""

from __future__ import annotations

import re

import hpcprep
import numpy as np
from hpcprep.report import build_report
from hpcprep_genomics.report import principal_plane

from tests.genomics.genome_data import leprae_genome, mtb_genome


def test_the_principal_plane_is_the_plane_of_most_variance():
    rng = np.random.default_rng(0)
    # Two clusters 20 apart along a random direction, unit noise in 16 dimensions.
    axis = rng.standard_normal(16)
    axis /= np.linalg.norm(axis)
    x = rng.standard_normal((400, 16))
    x[:200] += 10 * axis
    x[200:] -= 10 * axis
    xy, share = principal_plane(x)
    assert xy.shape == (400, 2)
    side_a, side_b = set(np.sign(xy[:200, 0])), set(np.sign(xy[200:, 0]))
    assert len(side_a) == len(side_b) == 1 and side_a != side_b  # PC1 separates the clusters
    assert abs(xy[:200, 0].mean() - xy[200:, 0].mean()) > 18
    # The shares are the top two eigenvalues of the covariance over its trace.
    ev = np.sort(np.linalg.eigvalsh(np.cov(x.T)))[::-1]
    assert np.allclose(share, ev[:2] / ev.sum())
    # Data that is already planar is only rotated: distances are kept.
    flat = np.c_[rng.standard_normal((50, 2)), np.zeros((50, 3))]
    p, s = principal_plane(flat)
    d = lambda a: np.linalg.norm(a[:, None] - a[None], axis=-1)  # noqa: E731
    assert np.allclose(d(p), d(flat)) and np.isclose(s.sum(), 1.0)


def test_a_two_genome_runs_report_shows_their_embeddings_apart(tmp_path, ray_local):
    spec = {
        "run": {"output": str(tmp_path / "run"), "name": "two"},
        "reader": {"stage": "genomics.fasta", "paths": [str(mtb_genome()), str(leprae_genome())], "window": 20000},
        "encoders": [{"stage": "genomics.kmer_spectrum", "k": 4}],
        "sinks": [{"stage": "parquet", "path": str(tmp_path / "run" / "table")}],
    }
    spec["reader"]["label_from"] = "file_stem"
    hpcprep.run(spec, progress=False)
    page = build_report(tmp_path / "run")
    assert "<h2>Embeddings (genomics)</h2>" in page

    def keyed(stat):
        return {k: float(v) for k, v in re.findall(rf'data-key="genomics\.pc1_{stat}\.([^"]+)">([-0-9.]+)<', page)}

    mean, sd = keyed("mean"), keyed("sd")
    tb, ml = "GCF_000195955.2_ASM19595v2_genomic", "GCF_000195855.1_ASM19585v1_genomic"
    assert set(mean) == set(sd) == {tb, ml}, mean
    # M. tuberculosis (GC 66 %) and M. leprae (GC 58 %): their 4-mer spectra lie apart along PC1, the gap
    # between the two means more than twice their spreads added (a projection blind to GC would give about 0).
    assert abs(mean[tb] - mean[ml]) > 2 * (sd[tb] + sd[ml])
    share = float(re.search(r'data-key="genomics\.pc_share">([0-9.]+)<', page).group(1))
    assert 0.3 < share <= 1
