"""Procedural test geometry with known answers: closed triangle meshes and analytic SDFs.

Every generator returns ``(vertices, faces)``: float64 (V, 3) and int64 (F, 3), a closed,
watertight surface with every face oriented outwards (positive signed volume), each vertex
stored once and used by some face. The analytic volume and surface area of the smooth shape
(``*_volume``, ``*_area``) are what the tessellation converges to; the tests bound the gap.

Conventions:

- ``sphere``: icosphere (an icosahedron split ``subdivisions`` times, vertices pushed back onto
  the sphere), so every vertex lies on the sphere and the mesh is inscribed in it.
- ``box``: axis-aligned, each face an ``n x n`` grid of squares cut into two triangles
  (``subdivisions=1``: the 12-triangle box). The mesh is the box exactly.
- ``torus``: axis z, a ``n_major x n_minor`` grid on the parametric surface; all vertices lie on
  the torus and each grid quad is a planar isosceles trapezoid.
- ``naca0012_wing``: leading edge at the origin, chord along +x, thickness along y, span from
  z = 0 to z = span. NACA 4-digit symmetric thickness with t = 0.12 and the closed trailing
  edge (last coefficient -0.1036, so the thickness is zero at x = c), cosine spacing along the
  chord, straight extrusion with flat end caps.
- ``ahmed_body``: an Ahmed-style bluff body. Simplifications: no stilts and no ground clearance
  (the floor is z = 0); the body is the intersection of two extruded profiles, a side profile
  (x-z: front top and bottom corners rounded with ``radius``, flat roof, a flat slant of
  ``slant_length`` measured along the slanted surface at ``slant_deg`` below the horizontal,
  vertical base) and a top profile (x-y: both front corners rounded with ``radius``). The front
  edges are therefore quarter cylinders and the four front corners are where two of them meet,
  not sphere octants; the longitudinal edges are sharp. It spans x in [0, length],
  y in [-width/2, width/2], z in [0, height]. The body is convex.

One module because each shape's generator, its analytic volume and area and (where it has one) its exact SDF
must agree, so they sit side by side, and ``make`` (what ``hpcprep cfd shapes`` calls) picks among them by name.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: NACA 4-digit thickness coefficients, closed trailing edge (the sum is exactly zero).
NACA_COEFFS = (0.2969, -0.1260, -0.3516, 0.2843, -0.1036)

__all__ = [
    "NACA_COEFFS",
    "SHAPES",
    "ShapeSpec",
    "ahmed_area",
    "ahmed_body",
    "ahmed_volume",
    "box",
    "box_area",
    "box_sdf",
    "box_volume",
    "make",
    "naca0012_section_area",
    "naca0012_thickness",
    "naca0012_wing",
    "sphere",
    "sphere_area",
    "sphere_sdf",
    "sphere_volume",
    "torus",
    "torus_area",
    "torus_sdf",
    "torus_volume",
]


# -- small checks ---------------------------------------------------------------------------


def _vec3(value, what: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} must be three finite numbers, got {value!r}")
    return arr


def _positive(value, what: str) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{what} must be a positive number, got {value!r}")
    return value


def _count(value, what: str, minimum: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _points(points) -> np.ndarray:
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"points must have shape (P, 3), got {arr.shape}")
    return arr


# -- sphere -----------------------------------------------------------------------------------


def _icosahedron() -> tuple[np.ndarray, np.ndarray]:
    """The 12 vertices (0, +-1, +-phi) and cyclic shifts; faces found as mutually adjacent triples."""
    phi = (1.0 + math.sqrt(5.0)) / 2.0
    base = [(0.0, a, b * phi) for a in (-1.0, 1.0) for b in (-1.0, 1.0)]
    verts = np.array([np.roll(p, shift) for shift in range(3) for p in base])
    # Neighbours are exactly the pairs at the edge length 2; a face is three mutual neighbours.
    d2 = ((verts[:, None, :] - verts[None, :, :]) ** 2).sum(-1)
    near = np.isclose(d2, 4.0)
    faces = []
    for i in range(12):
        for j in range(i + 1, 12):
            for k in range(j + 1, 12):
                if near[i, j] and near[j, k] and near[i, k]:
                    a, b, c = verts[i], verts[j], verts[k]
                    # Convex around the origin: outward means the normal points away from it.
                    faces.append((i, j, k) if np.dot(np.cross(b - a, c - a), a + b + c) > 0 else (i, k, j))
    return verts, np.array(faces, dtype=np.int64)


def sphere(radius: float = 1.0, subdivisions: int = 4, center=(0.0, 0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """Icosphere: ``20 * 4**subdivisions`` triangles, every vertex on the sphere."""
    radius = _positive(radius, "radius")
    subdivisions = _count(subdivisions, "subdivisions", 0)
    center = _vec3(center, "center")
    verts, faces = _icosahedron()
    verts = verts / np.linalg.norm(verts, axis=1, keepdims=True)
    for _ in range(subdivisions):
        # One new vertex per undirected edge; each triangle becomes four with the same orientation.
        edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
        unique, inverse = np.unique(edges, axis=0, return_inverse=True)
        mids = verts[unique[:, 0]] + verts[unique[:, 1]]
        mids /= np.linalg.norm(mids, axis=1, keepdims=True)
        m = (len(verts) + inverse.reshape(-1)).reshape(-1, 3)  # midpoints of edges ab, bc, ca
        a, b, c = faces.T
        ab, bc, ca = m.T
        faces = np.concatenate(
            [np.stack(t, axis=1) for t in ((a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca))], axis=0
        )
        verts = np.concatenate([verts, mids])
    return verts * radius + center, faces.astype(np.int64)


def sphere_volume(radius: float = 1.0, **_) -> float:
    return 4.0 / 3.0 * math.pi * radius**3


def sphere_area(radius: float = 1.0, **_) -> float:
    return 4.0 * math.pi * radius**2


# -- box --------------------------------------------------------------------------------------


def box(size=(1.0, 1.0, 1.0), center=(0.0, 0.0, 0.0), subdivisions: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned box, each face an ``subdivisions x subdivisions`` grid (``12 * n**2`` triangles)."""
    size = _vec3(size, "size")
    if np.any(size <= 0):
        raise ValueError(f"size must be positive, got {tuple(size)}")
    center = _vec3(center, "center")
    n = _count(subdivisions, "subdivisions", 1)
    coords = [center[k] + np.linspace(-size[k] / 2, size[k] / 2, n + 1) for k in range(3)]
    # Vertices are the lattice nodes on the boundary of the (n+1)^3 grid, numbered once each,
    # so the faces of neighbouring sides share their edge vertices by construction.
    ijk = np.stack(np.meshgrid(*(np.arange(n + 1),) * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    on_surface = np.any((ijk == 0) | (ijk == n), axis=1)
    ids = np.full((n + 1,) * 3, -1, dtype=np.int64)
    surf = ijk[on_surface]
    ids[surf[:, 0], surf[:, 1], surf[:, 2]] = np.arange(len(surf))
    verts = np.stack([coords[k][surf[:, k]] for k in range(3)], axis=1)
    a, b = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    a, b = a.ravel(), b.ravel()
    faces = []
    for k in range(3):
        i, j = (k + 1) % 3, (k + 2) % 3  # e_i x e_j = e_k
        for side in (0, n):

            def node(da, db, i=i, j=j, k=k, side=side):
                index = [None, None, None]
                index[i], index[j], index[k] = a + da, b + db, np.full_like(a, side)
                return ids[index[0], index[1], index[2]]

            q00, q10, q11, q01 = node(0, 0), node(1, 0), node(1, 1), node(0, 1)
            tris = np.concatenate([np.stack([q00, q10, q11], 1), np.stack([q00, q11, q01], 1)])
            # Counter-clockwise in (i, j) faces +e_k: right for the far side, flipped for the near one.
            faces.append(tris if side == n else tris[:, ::-1])
    return verts, np.concatenate(faces).astype(np.int64)


def box_volume(size=(1.0, 1.0, 1.0), **_) -> float:
    return float(np.prod(size))


def box_area(size=(1.0, 1.0, 1.0), **_) -> float:
    x, y, z = size
    return 2.0 * (x * y + y * z + z * x)


# -- torus ------------------------------------------------------------------------------------


def torus(
    major: float = 1.0, minor: float = 0.25, n_major: int = 64, n_minor: int = 32, center=(0.0, 0.0, 0.0)
) -> tuple[np.ndarray, np.ndarray]:
    """Torus around the z axis: ring radius ``major``, tube radius ``minor``; ``2 * n_major * n_minor`` triangles."""
    major, minor = _positive(major, "major"), _positive(minor, "minor")
    if minor >= major:
        raise ValueError(f"minor ({minor}) must be smaller than major ({major}), else the torus intersects itself")
    n_major, n_minor = _count(n_major, "n_major", 3), _count(n_minor, "n_minor", 3)
    center = _vec3(center, "center")
    u = 2.0 * math.pi * np.arange(n_major) / n_major
    v = 2.0 * math.pi * np.arange(n_minor) / n_minor
    uu, vv = np.meshgrid(u, v, indexing="ij")
    rho = major + minor * np.cos(vv)
    verts = np.stack([rho * np.cos(uu), rho * np.sin(uu), minor * np.sin(vv)], axis=-1).reshape(-1, 3)
    i, j = np.meshgrid(np.arange(n_major), np.arange(n_minor), indexing="ij")
    i, j = i.ravel(), j.ravel()
    i1, j1 = (i + 1) % n_major, (j + 1) % n_minor
    p00, p10, p11, p01 = i * n_minor + j, i1 * n_minor + j, i1 * n_minor + j1, i * n_minor + j1
    # d/du x d/dv points outwards, so (u, then v) ordered triangles face out.
    faces = np.concatenate([np.stack([p00, p10, p11], 1), np.stack([p00, p11, p01], 1)])
    return verts + center, faces.astype(np.int64)


def torus_volume(major: float = 1.0, minor: float = 0.25, **_) -> float:
    return 2.0 * math.pi**2 * major * minor**2


def torus_area(major: float = 1.0, minor: float = 0.25, **_) -> float:
    return 4.0 * math.pi**2 * major * minor


# -- NACA 0012 wing ---------------------------------------------------------------------------


def naca0012_thickness(x, chord: float = 1.0, t: float = 0.12):
    """Half-thickness y_t at ``x`` in [0, chord] (closed trailing edge)."""
    s = np.clip(np.asarray(x, dtype=np.float64) / chord, 0.0, 1.0)
    a0, a1, a2, a3, a4 = NACA_COEFFS
    return 5.0 * t * chord * (a0 * np.sqrt(s) + s * (a1 + s * (a2 + s * (a3 + s * a4))))


def naca0012_section_area(chord: float = 1.0, t: float = 0.12, **_) -> float:
    """Area of the section: 2 * integral of y_t over the chord, in closed form."""
    a0, a1, a2, a3, a4 = NACA_COEFFS
    return 10.0 * t * chord**2 * (a0 * 2 / 3 + a1 / 2 + a2 / 3 + a3 / 4 + a4 / 5)


def naca0012_wing(
    chord: float = 1.0, span: float = 2.0, n_chord: int = 100, n_span: int = 20
) -> tuple[np.ndarray, np.ndarray]:
    """Straight NACA 0012 wing: ``2 * n_chord`` section points per span station, flat end caps."""
    chord, span = _positive(chord, "chord"), _positive(span, "span")
    n, n_span = _count(n_chord, "n_chord", 2), _count(n_span, "n_span", 1)
    # Cosine spacing clusters stations at both edges, where the curvature is.
    x = chord * (1.0 - np.cos(math.pi * np.arange(n + 1) / n)) / 2.0
    y = naca0012_thickness(x, chord)
    # The section polygon, counter-clockwise seen from +z: trailing edge (0), the upper surface
    # towards the leading edge (n), the lower surface back. Both edges are single points.
    px = np.concatenate([[chord], x[n - 1 : 0 : -1], [0.0], x[1:n]])
    py = np.concatenate([[0.0], y[n - 1 : 0 : -1], [0.0], -y[1:n]])
    m = 2 * n
    upper = np.r_[n, n - np.arange(1, n), 0]  # polygon index of the upper point at station i
    lower = np.r_[n, n + np.arange(1, n), 0]
    # Cap: each pair of stations bounds a trapezoid lower_i, lower_i+1, upper_i+1, upper_i;
    # its degenerate triangle at the two single-point edges is left out.
    i = np.arange(n)
    cap = np.concatenate(
        [
            np.stack([lower[i[:-1]], lower[i[:-1] + 1], upper[i[:-1] + 1]], 1),
            np.stack([lower[i[1:]], upper[i[1:] + 1], upper[i[1:]]], 1),
        ]
    )
    z = span * np.arange(n_span + 1) / n_span
    verts = np.stack(
        [np.tile(px, n_span + 1), np.tile(py, n_span + 1), np.repeat(z, m)],
        axis=1,
    )
    p = np.arange(m)
    q = (p + 1) % m
    k = np.arange(n_span)
    pk = (k[:, None] * m + p[None, :]).ravel()
    qk = (k[:, None] * m + q[None, :]).ravel()
    # Wall quad p0 q0 q1 p1: edge direction x span direction is the outward (right-hand) normal.
    walls = np.concatenate([np.stack([pk, qk, qk + m], 1), np.stack([pk, qk + m, pk + m], 1)])
    faces = np.concatenate([walls, cap[:, ::-1], cap + n_span * m])
    return verts, faces.astype(np.int64)


# -- Ahmed body -------------------------------------------------------------------------------


def _ahmed_checks(length, width, height, slant_deg, radius, slant_length):
    length, width, height = _positive(length, "length"), _positive(width, "width"), _positive(height, "height")
    radius, slant_length = _positive(radius, "radius"), _positive(slant_length, "slant_length")
    slant_deg = float(slant_deg)
    if not 0.0 <= slant_deg < 90.0:
        raise ValueError(f"slant_deg must be in [0, 90), got {slant_deg}")
    if 2 * radius >= min(width, height):
        raise ValueError(f"radius ({radius}) must be below half the width and half the height")
    alpha = math.radians(slant_deg)
    x_slant = length - slant_length * math.cos(alpha)
    if x_slant <= radius:
        raise ValueError(f"the slant (length {slant_length} at {slant_deg} deg) reaches into the front fillet")
    if slant_length * math.sin(alpha) >= height:
        raise ValueError(f"the slant (length {slant_length} at {slant_deg} deg) is taller than the body")
    return length, width, height, alpha, radius, slant_length, x_slant


def ahmed_body(
    length: float = 1.044,
    width: float = 0.389,
    height: float = 0.288,
    slant_deg: float = 25.0,
    radius: float = 0.1,
    slant_length: float = 0.222,
    n_fillet: int = 8,
    n_length: int = 16,
    n_slant: int = 4,
    n_width: int = 8,
    n_height: int = 6,
) -> tuple[np.ndarray, np.ndarray]:
    """Ahmed-style body (see the module notes); segments: ``n_fillet`` per front fillet,
    ``n_length`` on the roof, ``n_slant`` on the slant, ``n_width`` x ``n_height`` on each cross-section."""
    length, width, height, alpha, radius, slant_length, x_slant = _ahmed_checks(
        length, width, height, slant_deg, radius, slant_length
    )
    nf, nl, ns = _count(n_fillet, "n_fillet", 1), _count(n_length, "n_length", 1), _count(n_slant, "n_slant", 1)
    ny, nz = _count(n_width, "n_width", 1), _count(n_height, "n_height", 1)
    # Every cross-section x = const is a rectangle |y| <= w(x), zlo(x) <= z <= zhi(x). Both front
    # fillets have the same radius and start at x = 0, so one angle theta gives the station for both.
    theta = 0.5 * math.pi * np.arange(nf + 1) / nf
    s = radius * np.sin(theta)
    x = np.concatenate(
        [
            radius * (1.0 - np.cos(theta)),
            np.linspace(radius, x_slant, nl + 1)[1:],
            np.linspace(x_slant, length, ns + 1)[1:],
        ]
    )
    half = np.concatenate([width / 2 - radius + s, np.full(nl + ns, width / 2)])
    zlo = np.concatenate([radius - s, np.zeros(nl + ns)])
    zhi = np.concatenate(
        [height - radius + s, np.full(nl, height), height - (x[nf + nl + 1 :] - x_slant) * math.tan(alpha)]
    )
    # The slant's last station is exactly the base height, whatever the rounding of tan.
    zhi[-1] = height - slant_length * math.sin(alpha)

    # A ring per station, counter-clockwise seen from +x: bottom (+y), right side (+z), top (-y), left (-z).
    fy, fz = np.arange(ny) / ny, np.arange(nz) / nz
    n_st, m = len(x), 2 * (ny + nz)
    ry = np.concatenate(
        [-1 + 2 * fy, np.ones(nz), 1 - 2 * fy, -np.ones(nz)],
    )
    rz = np.concatenate([np.zeros(ny), fz, np.ones(ny), 1 - fz])  # 0 = zlo, 1 = zhi
    verts_y = half[:, None] * ry[None, :]
    verts_z = zlo[:, None] + (zhi - zlo)[:, None] * rz[None, :]
    verts = np.stack([np.repeat(x, m), verts_y.ravel(), verts_z.ravel()], axis=1)

    k = np.arange(m)
    k1 = (k + 1) % m
    st = np.arange(n_st - 1)
    a = (st[:, None] * m + k[None, :]).ravel()
    b = (st[:, None] * m + k1[None, :]).ravel()
    # Ring tangent x (+x) is the outward normal, hence this order.
    faces = [np.stack([a, b, b + m], 1), np.stack([a, b + m, a + m], 1)]

    # End caps: an (ny+1) x (nz+1) grid whose boundary nodes are the ring's vertices.
    grid = np.full((ny + 1, nz + 1), -1, dtype=np.int64)
    grid[:, 0] = np.arange(ny + 1)
    grid[ny, :] = ny + np.arange(nz + 1)
    grid[:, nz] = ny + nz + (ny - np.arange(ny + 1))
    grid[0, :] = (2 * ny + nz + (nz - np.arange(nz + 1))) % m
    gi, gj = np.meshgrid(np.arange(1, ny), np.arange(1, nz), indexing="ij")
    n_inner = gi.size
    extra = []
    for cap, station in (("front", 0), ("base", n_st - 1)):
        ids = grid + station * m
        inner = len(verts) + sum(len(e) for e in extra) + np.arange(n_inner)
        ids[gi.ravel(), gj.ravel()] = inner
        extra.append(
            np.stack(
                [
                    np.full(n_inner, x[station]),
                    half[station] * (-1 + 2 * gi.ravel() / ny),
                    zlo[station] + (zhi[station] - zlo[station]) * gj.ravel() / nz,
                ],
                axis=1,
            )
        )
        q00, q10, q11, q01 = ids[:-1, :-1].ravel(), ids[1:, :-1].ravel(), ids[1:, 1:].ravel(), ids[:-1, 1:].ravel()
        tris = np.concatenate([np.stack([q00, q10, q11], 1), np.stack([q00, q11, q01], 1)])
        # Counter-clockwise in (y, z) faces +x: right for the base, flipped for the front face.
        faces.append(tris if cap == "base" else tris[:, ::-1])
    verts = np.concatenate([verts, *extra])
    return verts, np.concatenate(faces).astype(np.int64)


def ahmed_volume(length=1.044, width=0.389, height=0.288, slant_deg=25.0, radius=0.1, slant_length=0.222, **_) -> float:
    """Exact volume of the smooth body: front (two fillets) + prism + slanted rear."""
    length, width, height, alpha, r, sl, x_slant = _ahmed_checks(length, width, height, slant_deg, radius, slant_length)
    a, b = width / 2 - r, height - 2 * r
    # Over the front, 2 w h with w = a + s, h = b + 2 s and s = sqrt(r^2 - (r - x)^2):
    # int s dx = pi r^2 / 4 (quarter disc), int s^2 dx = 2 r^3 / 3.
    front = 2 * a * b * r + (2 * a + b) * math.pi * r**2 / 2 + 8 * r**3 / 3
    middle = width * height * (x_slant - r)
    rear = width * sl * math.cos(alpha) * (height - sl * math.sin(alpha) / 2)
    return front + middle + rear


def ahmed_area(length=1.044, width=0.389, height=0.288, slant_deg=25.0, radius=0.1, slant_length=0.222, **_) -> float:
    """Exact surface area of the smooth body, face by face."""
    length, width, height, alpha, r, sl, x_slant = _ahmed_checks(length, width, height, slant_deg, radius, slant_length)
    a, b = width / 2 - r, height - 2 * r
    front_face = (width - 2 * r) * (height - 2 * r)
    roof_floor_fillets = 2 * (math.pi * a * r + 2 * r**2)  # int 2 w r dtheta, top and bottom
    side_fillets = 2 * (math.pi * b * r / 2 + 2 * r**2)  # int h r dtheta, both sides
    roof = width * (x_slant - r)
    floor = width * (length - r)
    sides = 2 * (height * (x_slant - r) + sl * math.cos(alpha) * (height - sl * math.sin(alpha) / 2))
    slant = width * sl
    base = width * (height - sl * math.sin(alpha))
    return front_face + roof_floor_fillets + side_fillets + roof + floor + sides + slant + base


# -- analytic signed distances (negative inside) ----------------------------------------------


def sphere_sdf(points, radius: float = 1.0, center=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Signed distance to a sphere, (P,) float64."""
    p = _points(points) - _vec3(center, "center")
    return np.linalg.norm(p, axis=1) - _positive(radius, "radius")


def box_sdf(points, size=(1.0, 1.0, 1.0), center=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Exact signed distance to an axis-aligned box (Euclidean to edges and corners outside)."""
    size = _vec3(size, "size")
    if np.any(size <= 0):
        raise ValueError(f"size must be positive, got {tuple(size)}")
    q = np.abs(_points(points) - _vec3(center, "center")) - size / 2
    outside = np.linalg.norm(np.maximum(q, 0.0), axis=1)
    inside = np.minimum(q.max(axis=1), 0.0)  # minus the distance to the nearest face
    return outside + inside


def torus_sdf(points, major: float = 1.0, minor: float = 0.25, center=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Signed distance to a torus around the z axis: distance to the core circle minus ``minor``."""
    major, minor = _positive(major, "major"), _positive(minor, "minor")
    p = _points(points) - _vec3(center, "center")
    ring = np.hypot(p[:, 0], p[:, 1]) - major
    return np.hypot(ring, p[:, 2]) - minor


# -- registry ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShapeSpec:
    """A named shape: its generator, default parameters, and how a resolution factor scales it."""

    generator: Callable[..., tuple[np.ndarray, np.ndarray]]
    defaults: dict
    #: resolution factor -> the tessellation parameters (the geometry stays as in ``defaults``)
    tessellation: Callable[[float], dict]
    volume: Callable[..., float] | None = None
    area: Callable[..., float] | None = None
    description: str = ""


def _scaled(n: int, factor: float, minimum: int) -> int:
    return max(minimum, round(n * factor))


def _naca_volume(chord=1.0, span=2.0, **_) -> float:
    return span * naca0012_section_area(chord)


SHAPES: dict[str, ShapeSpec] = {
    "sphere": ShapeSpec(
        sphere,
        {"radius": 1.0, "subdivisions": 4, "center": (0.0, 0.0, 0.0)},
        # Each subdivision halves the edge length: scaling the tessellation by f adds log2(f).
        lambda f: {"subdivisions": max(0, round(4 + math.log2(f)))},
        sphere_volume,
        sphere_area,
        "icosphere",
    ),
    "box": ShapeSpec(
        box,
        {"size": (1.0, 1.0, 1.0), "center": (0.0, 0.0, 0.0), "subdivisions": 4},
        lambda f: {"subdivisions": _scaled(4, f, 1)},
        box_volume,
        box_area,
        "axis-aligned box, square grid on each face",
    ),
    "torus": ShapeSpec(
        torus,
        {"major": 1.0, "minor": 0.25, "n_major": 64, "n_minor": 32, "center": (0.0, 0.0, 0.0)},
        lambda f: {"n_major": _scaled(64, f, 3), "n_minor": _scaled(32, f, 3)},
        torus_volume,
        torus_area,
        "torus around the z axis",
    ),
    "naca0012": ShapeSpec(
        naca0012_wing,
        {"chord": 1.0, "span": 2.0, "n_chord": 100, "n_span": 20},
        lambda f: {"n_chord": _scaled(100, f, 2), "n_span": _scaled(20, f, 1)},
        _naca_volume,
        None,
        "straight NACA 0012 wing, closed trailing edge, span along z",
    ),
    "ahmed": ShapeSpec(
        ahmed_body,
        {
            "length": 1.044,
            "width": 0.389,
            "height": 0.288,
            "slant_deg": 25.0,
            "radius": 0.1,
            "slant_length": 0.222,
            "n_fillet": 8,
            "n_length": 16,
            "n_slant": 4,
            "n_width": 8,
            "n_height": 6,
        },
        lambda f: {
            "n_fillet": _scaled(8, f, 1),
            "n_length": _scaled(16, f, 1),
            "n_slant": _scaled(4, f, 1),
            "n_width": _scaled(8, f, 1),
            "n_height": _scaled(6, f, 1),
        },
        ahmed_volume,
        ahmed_area,
        "Ahmed-style bluff body without stilts",
    ),
}


def make(name: str, resolution: float = 1.0, **overrides) -> tuple[dict, np.ndarray, np.ndarray]:
    """``(parameters, vertices, faces)`` of a registered shape at a resolution factor (1 = defaults)."""
    if name not in SHAPES:
        raise ValueError(f"unknown shape {name!r}; known: {', '.join(SHAPES)}")
    resolution = float(resolution)
    if not (math.isfinite(resolution) and resolution > 0):
        raise ValueError(f"resolution must be a positive number, got {resolution!r}")
    spec = SHAPES[name]
    unknown = set(overrides) - set(spec.defaults)
    if unknown:
        raise ValueError(f"{name}: unknown parameters {sorted(unknown)}; known: {sorted(spec.defaults)}")
    params = {**spec.defaults, **spec.tessellation(resolution), **overrides}
    vertices, faces = spec.generator(**params)
    return params, vertices, faces
