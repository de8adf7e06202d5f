"""Shape descriptor: invariances, nearest neighbours within shape families, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from hpcprep_cfd.kernels.descriptor import descriptor_length, shape_descriptor

from tests.cfd.test_mesh_kernels import box, torus, uv_sphere


def rotation(seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def family():
    """Four families, two or three members each: different tessellations, proportions and sizes."""
    return {
        ("sphere", "uv"): uv_sphere(16, 32),
        ("sphere", "fine"): uv_sphere(40, 80, radius=3.0),
        ("box", "cube"): box((0, 0, 0), (1, 1, 1), n=2),
        ("box", "1x1.5x2"): box((0, 0, 0), (1, 1.5, 2), n=3),
        ("box", "1x2x3"): box((0, 0, 0), (1, 2, 3)),
        ("torus", "thin"): torus(1.0, 0.3, 40, 20),
        ("torus", "fat"): torus(2.0, 0.9, 32, 16),
        ("plate", "square"): box((0, 0, 0), (10, 10, 0.2)),
        ("plate", "oblong"): box((0, 0, 0), (8, 12, 0.3), n=2),
    }


@pytest.fixture(scope="module")
def descriptors():
    return {key: shape_descriptor(v, f) for key, (v, f) in family().items()}


def test_length_norm_and_dtype(descriptors):
    for d in descriptors.values():
        assert d.dtype == np.float32 and d.shape == (descriptor_length(32),) == (99,)
        assert np.linalg.norm(d) == pytest.approx(1.0, abs=1e-6)
        assert (d >= 0).all()
    v, f = box(n=1)
    assert shape_descriptor(v, f, bins=8, samples=500).shape == (27,)


def test_invariant_to_rotation_scale_and_translation(descriptors):
    v, f = family()[("box", "1x1.5x2")]
    moved = 7.5 * v @ rotation(3).T + np.array([100.0, -20.0, 3.0])
    d_moved = shape_descriptor(moved, f)
    d_same = descriptors[("box", "1x1.5x2")]
    nearest_other = min(np.linalg.norm(d_same - d) for k, d in descriptors.items() if k[0] != "box")
    assert np.linalg.norm(d_moved - d_same) < 0.1 * nearest_other
    # Another seed (a fresh sample of the same shape) is also close: the invariance is not luck of the draw.
    v, f = family()[("torus", "thin")]
    d_other_seed = shape_descriptor(1e-3 * v @ rotation(4).T, f, seed=9)
    nearest_other = min(
        np.linalg.norm(descriptors[("torus", "thin")] - d) for k, d in descriptors.items() if k[0] != "torus"
    )
    assert np.linalg.norm(d_other_seed - descriptors[("torus", "thin")]) < 0.25 * nearest_other


def test_nearest_neighbour_is_of_the_same_family(descriptors):
    keys = list(descriptors)
    x = np.stack([descriptors[k] for k in keys])
    dist = np.linalg.norm(x[:, None] - x[None], axis=2)
    np.fill_diagonal(dist, np.inf)
    for i, key in enumerate(keys):
        nearest = keys[int(np.argmin(dist[i]))]
        assert nearest[0] == key[0], (key, nearest, np.round(dist[i], 3))


def test_orientation_of_faces_does_not_matter(descriptors):
    v, f = family()[("torus", "fat")]
    flipped = f.copy()
    flipped[::3] = flipped[::3, ::-1]
    # Flipping swaps two corners, so the samples move within their faces: equal up to sampling noise only.
    d = np.linalg.norm(shape_descriptor(v, flipped) - descriptors[("torus", "fat")])
    nearest_other = min(
        np.linalg.norm(descriptors[("torus", "fat")] - x) for k, x in descriptors.items() if k[0] != "torus"
    )
    assert d < 0.25 * nearest_other


def test_deterministic_for_a_seed():
    v, f = torus(1.0, 0.4, 24, 12)
    a = shape_descriptor(v, f, seed=5)
    np.testing.assert_array_equal(a, shape_descriptor(v, f, seed=5))
    assert not np.array_equal(a, shape_descriptor(v, f, seed=6))


def test_bad_input():
    v, f = box()
    with pytest.raises(ValueError, match="bins"):
        shape_descriptor(v, f, bins=0)
    with pytest.raises(ValueError, match="zero total area"):
        shape_descriptor(v, np.array([[0, 0, 1]]))
