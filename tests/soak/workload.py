"""What the soak runs: inputs for the three plugins and one pipeline spec per plugin.

    genomics  synthetic FASTA (seeded random DNA, several files of a few MB)
              -> genomics.fasta window=1000 -> genomics.kmer_counts k=4 + genomics.onehot -> Parquet
              (stateless CPU stages: Ray tasks)
    protein   real PDB/mmCIF files (tests/protein/corpus.py: freesasa, python-biopython-doc), copied
              -> protein.structure -> protein.dssp + protein.contacts -> Parquet (an actor pool)
    cfd       real tutorial geometry (tests/cfd/data.py: openfoam-examples) and trimesh primitives
              -> cfd.mesh -> cfd.surface_sample + cfd.sdf_points -> Parquet (an actor pool)

Between them the kills land on Ray Data read/encode/write tasks, on actor pools that Ray
restarts, and on the run's own bookkeeping. Each spec sets a short ``commit_seconds`` so a
run has several commit groups and a kill can fall on either side of a commit.

``scale`` multiplies every input count; 1 is sized for a 2-core machine to give runs of
roughly 40 s to 2 min each (Ray's start-up included; more on a busy machine).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from tests.cfd.data import GEOMETRY
from tests.protein.corpus import FILES as PROTEIN_CORPUS

DOMAINS = ("genomics", "protein", "cfd")

#: Input units at scale 1: FASTA files of ``GENOMICS_RECORDS`` records, copies of the
#: protein corpus, copies of the mesh set.
UNITS = {"genomics": 48, "protein": 12, "cfd": 6}
GENOMICS_RECORDS = 4
GENOMICS_RECORD_BASES = 500_000  # 4 records of 0.5 Mb: a 2 MB file, 2 000 windows
#: Real geometry from openfoam-examples; the larger ones (motorBike, DTC) would make one
#: record dominate a run.
MESH_FILES = ("flange.stl.gz", "bullet.stl.gz", "propellerTip.obj.gz", "wigley.stl.gz", "blob.stl.gz")
#: Commit groups end this many seconds after their first read: several groups per run.
COMMIT_SECONDS = 2.0


def make_genomics(folder: Path, files: int) -> None:
    """Seeded random DNA with a few soft-masked (lower-case) stretches, 60-column lines."""
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    for f in range(files):
        with open(folder / f"synthetic{f:03d}.fa", "wb") as out:
            for r in range(GENOMICS_RECORDS):
                rng = np.random.default_rng([f, r])
                seq = letters[rng.integers(0, 4, GENOMICS_RECORD_BASES, dtype=np.uint8)].copy()
                start = int(rng.integers(0, GENOMICS_RECORD_BASES - 5000))
                seq[start : start + 5000] |= 0x20  # lower case: the reader keeps soft-masking as is
                out.write(f">chr{f}_{r} synthetic, seed ({f}, {r})\n".encode())
                width = 60
                body = b"\n".join(seq[i : i + width].tobytes() for i in range(0, seq.size, width))
                out.write(body + b"\n")


def make_protein(folder: Path, copies: int) -> None:
    missing = [path for _, path in PROTEIN_CORPUS if not os.path.exists(path)]
    if missing:
        raise SystemExit(f"protein structures missing (apt-get install -y freesasa python-biopython-doc): {missing}")
    for c in range(copies):
        for _, path in PROTEIN_CORPUS:
            shutil.copyfile(path, folder / f"c{c:02d}_{os.path.basename(path)}")


def _primitives() -> dict[str, object]:
    """Closed trimesh primitives of a few hundred to a few thousand faces."""
    import trimesh

    return {
        "icosphere": trimesh.creation.icosphere(subdivisions=4, radius=1.0),
        "box": trimesh.creation.box(extents=(2.0, 1.0, 0.5)),
        "cylinder": trimesh.creation.cylinder(radius=0.5, height=2.0, sections=64),
        "capsule": trimesh.creation.capsule(height=1.5, radius=0.4, count=(32, 32)),
        "cone": trimesh.creation.cone(radius=0.8, height=1.6, sections=48),
        "torus": trimesh.creation.torus(major_radius=1.0, minor_radius=0.3, major_sections=64, minor_sections=32),
        "annulus": trimesh.creation.annulus(r_min=0.4, r_max=1.0, height=0.5, sections=64),
    }


def make_cfd(folder: Path, copies: int) -> None:
    missing = [name for name in MESH_FILES if not (GEOMETRY / name).exists()]
    if missing:
        raise SystemExit(f"tutorial geometry missing (apt-get install -y openfoam-examples): {missing}")
    primitives = _primitives()
    for c in range(copies):
        for name in MESH_FILES:
            shutil.copyfile(GEOMETRY / name, folder / f"c{c:02d}_{name}")
        for name, mesh in primitives.items():
            # each copy turned differently, so the copies are different records
            turned = mesh.copy()
            turned.apply_transform(_rotation(c))
            turned.export(folder / f"c{c:02d}_{name}.stl")


def _rotation(c: int) -> np.ndarray:
    import trimesh

    return trimesh.transformations.rotation_matrix(0.3 * c, [1.0, 0.5, 0.2])


def make_inputs(domain: str, folder: Path, scale: float) -> Path:
    """Write ``domain``'s inputs into ``folder`` (created); returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    units = max(1, round(UNITS[domain] * scale))
    {"genomics": make_genomics, "protein": make_protein, "cfd": make_cfd}[domain](folder, units)
    return folder


def spec_toml(domain: str, inputs: Path, out: Path) -> str:
    """The pipeline as a user would write it (absolute paths, core defaults for the rest)."""
    head = f'[run]\nname = "soak_{domain}"\noutput = "{out}"\ncommit_seconds = {COMMIT_SECONDS}\n\n[reader]\n'
    sink = f'\n[[sinks]]\nstage = "parquet"\npath = "{out / "table"}"\n'
    if domain == "genomics":
        body = (
            f'stage = "genomics.fasta"\npaths = ["{inputs}"]\nwindow = 1000\n\n'
            '[[encoders]]\nstage = "genomics.kmer_counts"\nk = 4\n\n'
            '[[encoders]]\nstage = "genomics.onehot"\n'
        )
    elif domain == "protein":
        body = (
            f'stage = "protein.structure"\npaths = ["{inputs}"]\n\n'
            '[[encoders]]\nstage = "protein.dssp"\n\n'
            '[[encoders]]\nstage = "protein.contacts"\ncutoff = 8.0\nmin_seq_sep = 3\n'
        )
    elif domain == "cfd":
        body = (
            f'stage = "cfd.mesh"\npaths = ["{inputs}"]\n\n'
            '[[encoders]]\nstage = "cfd.surface_sample"\nn = 4096\nseed = 0\n\n'
            '[[encoders]]\nstage = "cfd.sdf_points"\nn_volume = 4096\nn_surface = 4096\nseed = 0\n'
        )
    else:
        raise ValueError(domain)
    return head + body + sink
