"""cfd.cell_features and the exact merge of its per-chunk statistics."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hpcprep import RecordError
from hpcprep_cfd import fieldstats
from hpcprep_cfd.cell_features import CellFeatures
from hpcprep_cfd.stats_command import case_statistics


def _weighted(x, w):
    mean = np.average(x, weights=w, axis=0)
    std = np.sqrt(np.average((x - mean) ** 2, weights=w, axis=0))
    return mean, std


@pytest.mark.parametrize("cuts", [[], [1], [7, 8, 500], list(range(1, 999, 37))])
def test_partials_merge_to_the_single_pass_statistics(cuts):
    rng = np.random.default_rng(3)
    x = rng.normal(5.0, 2.0, size=(1000, 3)) * np.array([1.0, 1e3, 1e-3])
    w = rng.random(1000) + 1e-3
    bounds = [0, *cuts, 1000]
    parts = [fieldstats.partial(x[a:b], w[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    # Merged in a different order than produced, as workers would finish.
    merged = fieldstats.summary(fieldstats.merge_all(parts[::-1]))
    mean, std = _weighted(x, w)
    for c in range(3):
        assert merged[c]["n"] == 1000
        assert merged[c]["weight"] == pytest.approx(w.sum(), rel=1e-12)
        assert merged[c]["mean"] == pytest.approx(mean[c], rel=1e-12)
        assert merged[c]["std"] == pytest.approx(std[c], rel=1e-10)
        assert merged[c]["min"] == x[:, c].min() and merged[c]["max"] == x[:, c].max()


def test_averaging_chunk_means_would_be_wrong_but_merge_is_not():
    x = np.array([0.0, 0.0, 0.0, 10.0])
    w = np.ones(4)
    a, b = fieldstats.partial(x[:3], w[:3]), fieldstats.partial(x[3:], w[3:])
    assert fieldstats.summary(fieldstats.merge(a, b))[0]["mean"] == pytest.approx(2.5)
    assert (a[2] + b[2]) / 2 == 5.0  # the naive average of chunk means


def test_merge_rejects_partials_of_different_fields():
    with pytest.raises(ValueError, match="different widths"):
        fieldstats.merge(fieldstats.partial(np.ones((2, 3)), np.ones(2)), fieldstats.partial(np.ones(2), np.ones(2)))


def _chunks(n_cells=(40, 25, 35), seed=0):
    rng = np.random.default_rng(seed)
    cells = sum(n_cells)
    centres = rng.random((cells, 3)) * 4
    volumes = rng.random(cells) * 1e-3 + 1e-5
    U = rng.normal(10, 3, size=(cells, 3))
    p = rng.normal(50, 20, size=cells)
    bounds = np.cumsum([0, *n_cells])
    batch = {
        "source": np.array(["/cases/a"] * len(n_cells), dtype=object),
        "record_id": np.array([f"a:{i}" for i in range(len(n_cells))], dtype=object),
        "kind": np.array(["cells"] * len(n_cells), dtype=object),
    }
    for name, arr in (("centres", centres), ("volumes", volumes), ("field_U", U), ("field_p", p)):
        parts = [arr[a:b].reshape(-1) for a, b in zip(bounds[:-1], bounds[1:])]
        batch[name] = np.array(parts + [None], dtype=object)[:-1]
    return batch, centres, volumes, U, p


def test_non_dimensional_fields_and_case_statistics():
    batch, centres, volumes, U, p = _chunks()
    stage = CellFeatures({"fields": ["U", "p"], "u_ref": 20.0, "p_ref": 10.0, "l_ref": 2.0, "origin": (1.0, 0.0, 0.0)})
    out = stage.encode(batch)
    nd_u = np.concatenate(out["nd_U"].to_numpy(zero_copy_only=False)).reshape(-1, 3)
    cp = np.concatenate(out["nd_p"].to_numpy(zero_copy_only=False))
    np.testing.assert_allclose(nd_u, U / 20.0, rtol=1e-6)
    np.testing.assert_allclose(cp, (p - 10.0) / (0.5 * 20.0**2), rtol=1e-6, atol=1e-7)
    nd_c = np.concatenate(out["nd_centres"].to_numpy(zero_copy_only=False)).reshape(-1, 3)
    np.testing.assert_allclose(nd_c, (centres - [1.0, 0, 0]) / 2.0, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        np.concatenate(out["nd_volumes"].to_numpy(zero_copy_only=False)), volumes / 8.0, rtol=1e-6
    )

    table = pa.table({"source": batch["source"].tolist(), "stats_U": out["stats_U"], "stats_p": out["stats_p"]})
    result = case_statistics(table)["/cases/a"]
    mean, std = _weighted((p - 10.0) / 200.0, volumes)
    assert result["p"][0]["mean"] == pytest.approx(mean, rel=1e-12)
    assert result["p"][0]["std"] == pytest.approx(std, rel=1e-10)
    assert result["p"][0]["n"] == len(p)
    mean_u, _ = _weighted(U / 20.0, volumes)
    assert [c["mean"] for c in result["U"]] == pytest.approx(mean_u.tolist(), rel=1e-12)


def test_unknown_fields_are_kept_and_noted():
    stage = CellFeatures({"fields": ["U", "alpha.water"]})
    assert stage.notes() and "alpha.water" in stage.notes()[0]
    assert CellFeatures({"fields": ["alpha.water"], "scales": {"alpha.water": 2.0}}).notes() == []


def test_a_field_of_the_wrong_size_is_a_bad_record():
    batch, *_ = _chunks()
    batch["field_p"] = np.array([np.ones(3)] * 3, dtype=object)
    with pytest.raises(RecordError, match="field 'p' has 3 values for 40 cells"):
        CellFeatures({"fields": ["p"]}).encode(batch)


def test_a_missing_field_names_the_reader():
    batch, *_ = _chunks()
    del batch["field_p"]
    with pytest.raises(RecordError, match="field_p.*cfd.openfoam"):
        CellFeatures({"fields": ["p"]}).encode(batch)
