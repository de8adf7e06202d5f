"""``cfd.cell_features``: OpenFOAM cell chunks to non-dimensional features with mergeable statistics.

Surrogate models train on fields scaled by the free stream, not on raw SI values, so
that cases at different speeds and sizes share one distribution. The scaling rules
follow the usual OpenFOAM field names (incompressible solvers store kinematic
pressure, hence ``rho_ref = 1`` by default):

============  ==========================================
field         non-dimensional value
============  ==========================================
``U``         U / u_ref
``p``         Cp = (p - p_ref) / (0.5 rho_ref u_ref²)
``p_rgh``     as ``p``
``k``         k / u_ref²
``omega``     omega l_ref / u_ref
``epsilon``   epsilon l_ref / u_ref³
``nut``       nut / (u_ref l_ref) (also ``nuTilda``, ``nu``)
``T``         T / t_ref (when ``t_ref`` is set)
============  ==========================================

Other fields are divided by ``scales[name]`` when given, else kept as they are (the
run's notes say so). Each record also gets volume-weighted partial statistics per
field (``hpcprep_cfd.fieldstats``) that ``hpcprep cfd stats`` merges exactly across
chunks and workers.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hpcprep import Column, Encoder, Input, Params, RecordError, StageExamples, record_id
from hpcprep.columns import column_of, list_column
from pydantic import Field

from . import fieldstats
from .column_types import FLOAT_LISTS, STRINGS
from .encoders import float32_lists

CELL_HINT = "cfd.cell_features needs the cfd.openfoam reader (centres, volumes, kind, field_<name>)"
PRESSURE = ("p", "p_rgh")
VISCOSITY = ("nut", "nuTilda", "nu")


#: Short names of the non-dimensional values of the usual fields (the table above), for listings.
FEATURE_NAMES = {
    "U": "U/U_ref",
    "p": "Cp",
    "p_rgh": "Cp",
    "k": "k/U_ref^2",
    "omega": "omega l_ref/U_ref",
    "epsilon": "epsilon l_ref/U_ref^3",
    "nut": "nut/(U_ref l_ref)",
    "nuTilda": "nuTilda/(U_ref l_ref)",
    "nu": "nu/(U_ref l_ref)",
    "T": "T/T_ref",
}


class CellFeaturesParams(Params):
    fields: list[str] = Field(["U", "p"], description="fields to scale (their field_<name> columns must be present)")
    u_ref: float = Field(1.0, gt=0, description="reference (free-stream) speed")
    p_ref: float = Field(0.0, description="reference pressure subtracted before scaling")
    rho_ref: float = Field(
        1.0, gt=0, description="reference density (1 for the kinematic pressure of incompressible solvers)"
    )
    l_ref: float = Field(1.0, gt=0, description="reference length (chord, body length)")
    t_ref: float | None = Field(None, gt=0, description="reference temperature for T")
    origin: tuple[float, float, float] = Field(
        (0.0, 0.0, 0.0), description="point subtracted from cell centres before scaling by l_ref"
    )
    scales: dict[str, float] = Field({}, description="divisor for any other field, by name")


class CellFeatures(Encoder):
    """OpenFOAM cells: non-dimensional coordinates, volumes and fields, with mergeable statistics."""

    name = "cfd.cell_features"
    Params = CellFeaturesParams
    batch_size = 8
    outputs = (
        Column("nd_centres", "list<float32>", "n x 3 (centre - origin) / l_ref"),
        Column("nd_volumes", "list<float32>", "volume / l_ref³ (patch rows: area / l_ref²)"),
    )
    inputs = (
        Input("centres", FLOAT_LISTS, "cell (or patch face) centres, n x 3 flattened"),
        Input("volumes", FLOAT_LISTS, "cell volumes (or patch face areas), n"),
        Input("kind", STRINGS, "'cells' or 'patch': patch rows scale areas, not volumes"),
    )

    def __init__(self, params=None):
        super().__init__(params)
        # Each scaled field is a field_<name> column of cfd.openfoam, which declares it when
        # the reader's own `fields` names it.
        self.inputs = type(self).inputs + tuple(
            Input(f"field_{f}", FLOAT_LISTS, f"values of field {f}, n or n x 3 flattened") for f in self.params.fields
        )
        cols = list(type(self).outputs)
        for f in self.params.fields:
            cols.append(Column(f"nd_{f}", "list<float32>", f"{f}, non-dimensional ({self.rule(f)})"))
            cols.append(
                Column(f"stats_{f}", "list<double>", f"volume-weighted partial statistics of nd_{f}, 6 per component")
            )
        self.outputs = tuple(cols)

    def rule(self, name: str) -> str:
        p = self.params
        if name in p.scales:
            return f"divided by {p.scales[name]:g}"
        if name == "U":
            return "U / u_ref"
        if name in PRESSURE:
            return "Cp = (p - p_ref) / (0.5 rho_ref u_ref^2)"
        if name == "k":
            return "k / u_ref^2"
        if name == "omega":
            return "omega l_ref / u_ref"
        if name == "epsilon":
            return "epsilon l_ref / u_ref^3"
        if name in VISCOSITY:
            return f"{name} / (u_ref l_ref)"
        if name == "T" and p.t_ref is not None:
            return "T / t_ref"
        return "kept dimensional"

    def notes(self) -> list[str]:
        kept = [f for f in self.params.fields if self.rule(f) == "kept dimensional"]
        return (
            [f"cfd.cell_features: no scaling rule for {', '.join(kept)}; kept dimensional (set scales)"] if kept else []
        )

    def scale(self, name: str, values: np.ndarray) -> np.ndarray:
        p = self.params
        if name in p.scales:
            return values / p.scales[name]
        if name == "U":
            return values / p.u_ref
        if name in PRESSURE:
            return (values - p.p_ref) / (0.5 * p.rho_ref * p.u_ref**2)
        if name == "k":
            return values / p.u_ref**2
        if name == "omega":
            return values * p.l_ref / p.u_ref
        if name == "epsilon":
            return values * p.l_ref / p.u_ref**3
        if name in VISCOSITY:
            return values / (p.u_ref * p.l_ref)
        if name == "T" and p.t_ref is not None:
            return values / p.t_ref
        return values

    def encode(self, batch):
        p = self.params
        origin = np.asarray(p.origin, dtype=np.float64)
        kinds = column_of(batch, "kind", CELL_HINT)
        centres, volumes = [], []
        per_field = {f: ([], []) for f in p.fields}
        for i, (c, v) in enumerate(zip(column_of(batch, "centres", CELL_HINT), column_of(batch, "volumes", CELL_HINT))):
            c = np.asarray(c, dtype=np.float64).reshape(-1, 3)
            v = np.asarray(v, dtype=np.float64)
            if len(c) != len(v):
                raise RecordError(f"{len(c)} centres but {len(v)} volumes")
            dim = 2 if kinds[i] == "patch" else 3
            centres.append(((c - origin) / p.l_ref).reshape(-1))
            volumes.append(v / p.l_ref**dim)
            for f in p.fields:
                x = np.asarray(column_of(batch, f"field_{f}", CELL_HINT)[i], dtype=np.float64)
                if len(v) and x.size % len(v):
                    raise RecordError(f"field {f!r} has {x.size} values for {len(v)} cells")
                nd = self.scale(f, x.reshape(len(v), -1) if len(v) else x.reshape(0, 1))
                per_field[f][0].append(nd.reshape(-1))
                # Patch rows hold NaN where a patch has no value: leave them out of the statistics.
                ok = np.isfinite(nd).all(axis=1)
                per_field[f][1].append(fieldstats.partial(nd[ok], v[ok]))
        out = {"nd_centres": float32_lists(centres), "nd_volumes": float32_lists(volumes)}
        for f, (values, stats) in per_field.items():
            out[f"nd_{f}"] = float32_lists(values)
            out[f"stats_{f}"] = list_column(stats, pa.float64())
        return out

    @classmethod
    def examples(cls, workdir):
        return StageExamples(
            params={"fields": ["U", "p"], "u_ref": 10.0}, good=_cells_batch(), bad=_cells_batch(bad=True)
        )


def _cells_batch(bad: bool = False) -> dict:
    rng = np.random.default_rng(0)
    n = [5, 3]
    rows = {
        "source": np.array(["case-a", "case-a"], dtype=object),
        "record_id": np.array([record_id("case-a", "cells", i) for i in range(2)], dtype=object),
        "kind": np.array(["cells", "cells"], dtype=object),
        "centres": np.array([rng.random(3 * k) for k in n] + [None], dtype=object)[:-1],
        "volumes": np.array([rng.random(k) + 0.1 for k in n] + [None], dtype=object)[:-1],
        "field_U": np.array([rng.random(3 * k) for k in n] + [None], dtype=object)[:-1],
        "field_p": np.array([rng.random(k) for k in n] + [None], dtype=object)[:-1],
    }
    if bad:
        rows["field_p"] = np.array([rng.random(k + 1) for k in n] + [None], dtype=object)[:-1]
    return rows
