"""CFD spatial kernels on generated meshes and points against the NumPy brute-force references.

The references are the plugin's own (``hpcprep_cfd.kernels.reference_spatial``: every
point against every triangle, with formulations different from the kernels') and the
closed test meshes are the ones ``tests/cfd/test_spatial_kernels.py`` builds; hypothesis
supplies what a hand-written test fixes once: the triangles of a soup, a rigid motion and
scale of a closed mesh, and the query points, including points on and very near the
surface.
"""

from __future__ import annotations

import numpy as np
from hpcprep_cfd.kernels.distance import signed_distance, unsigned_distance
from hpcprep_cfd.kernels.grid import sdf_grid
from hpcprep_cfd.kernels.reference_spatial import (
    grid_nodes,
    point_triangle_ref,
    signed_distance_ref,
    unsigned_distance_ref,
    winding_number_ref,
)
from hpcprep_cfd.kernels.winding import DEFAULT_ACCURACY, ERROR_BOUND, winding_number
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tests.cfd.test_spatial_kernels import box_mesh, icosphere, octahedron_mesh

FAST = settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=12, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

coordinate = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False)
CLOSED = {"box": box_mesh(), "octahedron": octahedron_mesh(), "icosphere": icosphere(2)}


@st.composite
def soups(draw, max_triangles: int = 12):
    """A triangle soup with shared vertices, degenerate triangles now and then (a repeated
    vertex index), and the index array hypothesis picks."""
    nv = draw(st.integers(3, 14))
    vertices = draw(arrays(np.float64, (nv, 3), elements=coordinate))
    faces = draw(arrays(np.int64, (draw(st.integers(1, max_triangles)), 3), elements=st.integers(0, nv - 1)))
    return vertices, faces


@st.composite
def rotations(draw) -> np.ndarray:
    """A rotation matrix from a hypothesis-drawn unit quaternion."""
    q = np.array(draw(st.tuples(*[st.floats(-1, 1)] * 4)))
    if np.linalg.norm(q) < 1e-3:
        q = np.array([1.0, 0, 0, 0])
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


@st.composite
def placed_closed_meshes(draw):
    """One of the closed test meshes, rotated, scaled and moved."""
    name = draw(st.sampled_from(sorted(CLOSED)))
    v, f = CLOSED[name]
    scale = draw(st.floats(0.05, 20.0))
    shift = np.array(draw(st.tuples(*[st.floats(-10, 10)] * 3)))
    return name, v @ draw(rotations()).T * scale + shift, f


@st.composite
def queries(draw, vertices: np.ndarray, faces: np.ndarray, n_max: int = 40) -> np.ndarray:
    """Points around the mesh's box, plus points on triangles and just off them."""
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    pad = 0.5 * (hi - lo).max() + 1e-3
    n = draw(st.integers(1, n_max))
    u = draw(arrays(np.float64, (n, 3), elements=st.floats(0.0, 1.0)))
    points = lo - pad + u * (hi - lo + 2 * pad)
    on = draw(arrays(np.float64, (draw(st.integers(0, 6)), 3), elements=st.floats(0.0, 1.0)))
    if len(on):
        tri = vertices[faces[draw(arrays(np.int64, len(on), elements=st.integers(0, len(faces) - 1)))]]
        w = on / on.sum(axis=1, keepdims=True).clip(1e-12)
        surface = np.einsum("pk,pkd->pd", w, tri)
        offset = draw(st.sampled_from([0.0, 1e-9, 1e-4]))
        points = np.vstack([points, surface + offset])
    return points


@FAST
@given(st.data())
def test_unsigned_distance_is_the_nearest_triangle(data):
    vertices, faces = data.draw(soups())
    points = data.draw(queries(vertices, faces))
    d, closest, fid = unsigned_distance(vertices, faces, points)
    dr, _, _ = unsigned_distance_ref(vertices, faces, points)
    scale = 1.0 + np.abs(vertices).max()
    assert np.allclose(d, dr, rtol=1e-9, atol=1e-12 * scale)
    # the closest point is that far away, and lies on the face the kernel names
    assert np.allclose(np.linalg.norm(points - closest, axis=1), d, rtol=1e-9, atol=1e-12 * scale)
    on_face, _ = point_triangle_ref(closest, vertices[faces[fid]])
    assert np.allclose(np.sqrt(on_face[np.arange(len(fid)), np.arange(len(fid))]), 0.0, atol=1e-9 * scale)


@FAST
@given(st.data())
def test_exact_winding_number_of_a_soup_equals_the_reference(data):
    vertices, faces = data.draw(soups())
    points = data.draw(queries(vertices, faces))
    # on a triangle's plane the solid angle jumps; compare off the surface only
    d, _, _ = unsigned_distance_ref(vertices, faces, points)
    off = d > 1e-6
    w = winding_number(vertices, faces, points[off], accuracy=None)
    assert np.allclose(w, winding_number_ref(vertices, faces, points[off]), rtol=0, atol=1e-9)


@FAST
@given(st.data())
def test_winding_number_of_a_closed_mesh_is_one_inside_zero_outside(data):
    name, vertices, faces = data.draw(placed_closed_meshes())
    points = data.draw(queries(vertices, faces))
    d, _, _ = unsigned_distance_ref(vertices, faces, points)
    off = d > 1e-6 * (vertices.max() - vertices.min())
    exact = winding_number(vertices, faces, points[off], accuracy=None)
    ref = winding_number_ref(vertices, faces, points[off])
    assert np.allclose(exact, ref, atol=1e-9)
    assert np.allclose(exact, np.round(exact), atol=1e-9)  # a closed mesh: 0 or 1, nothing between
    assert set(np.round(exact).tolist()) <= {0.0, 1.0}
    fast = winding_number(vertices, faces, points[off])
    assert np.abs(fast - exact).max(initial=0.0) < ERROR_BOUND[DEFAULT_ACCURACY]


@FAST
@given(st.data())
def test_signed_distance_of_a_closed_mesh_equals_the_reference(data):
    name, vertices, faces = data.draw(placed_closed_meshes())
    points = data.draw(queries(vertices, faces))
    inside_out = data.draw(st.booleans())
    if inside_out:
        faces = faces[:, ::-1]  # the sign must not depend on the orientation of a closed mesh
    sd, _, _ = signed_distance(vertices, faces, points)
    ref, _, _ = signed_distance_ref(vertices, faces, points)
    size = vertices.max() - vertices.min()
    assert np.allclose(np.abs(sd), np.abs(ref), rtol=1e-9, atol=1e-12 * size)
    clear = np.abs(ref) > 1e-6 * size  # on the surface the sign of 0 is a matter of convention
    assert np.array_equal(np.sign(sd[clear]), np.sign(ref[clear]))


@FEW
@given(placed_closed_meshes(), st.integers(2, 6))
def test_sdf_grid_nodes_equal_the_reference(mesh, n):
    _, vertices, faces = mesh
    grid, origin, spacing = sdf_grid(vertices, faces, n)
    nodes = grid_nodes(grid.shape, origin, spacing)
    ref, _, _ = signed_distance_ref(vertices, faces, nodes)
    size = vertices.max() - vertices.min()
    assert np.allclose(grid.reshape(-1), ref, rtol=1e-9, atol=1e-9 * size)
