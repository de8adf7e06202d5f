"""Lay out the genomes the genomics example runs on (``make demo`` calls this).

Three real genomes from Debian packages and one simulated:

- M. tuberculosis H37Rv and M. leprae TN (``kmer-examples``: a tarball of FASTA files)
- lambda phage (``bowtie2-examples``: gzip FASTA)
- ``simulated``: a third-order Markov chain with random transition probabilities

Each becomes ``<out>/genomes/<label>.fa`` (the file stem is the organism label), and two
BED files split every record by position: ``index.bed`` holds the first 80 % of each
genome (fragments that go into LanceDB), ``query.bed`` the last 20 % (held-out
fragments searched against them). Position, not random choice, keeps overlapping or
neighbouring windows from leaking between the two sides.

    python examples/genomics_prepare.py build/genomics
"""

from __future__ import annotations

import gzip
import sys
import tarfile
from pathlib import Path

import numpy as np

KMER_EXAMPLES = Path("/usr/share/doc/kmer-examples/test_data.tar.gz")
LAMBDA = Path("/usr/share/doc/bowtie2/examples/reference/lambda_virus.fa.gz")
FROM_TARBALL = {
    "m_tuberculosis": "GCF_000195955.2_ASM19595v2_genomic.fna",
    "m_leprae": "GCF_000195855.1_ASM19585v1_genomic.fna",
}
INDEX_FRACTION = 0.8


def simulate(length: int, seed: int) -> str:
    """A genome from a random order-3 Markov chain: its k-mer spectrum is its own."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(4, 0.6), size=64)
    cum = np.cumsum(probs, axis=1)
    draws = rng.random(length)
    codes = np.empty(length, dtype=np.uint8)
    state = 0
    for i in range(length):  # a few seconds for 1 Mb; run once per demo
        b = int(np.searchsorted(cum[state], draws[i]))
        b = min(b, 3)
        codes[i] = b
        state = ((state << 2) | b) & 63
    return np.frombuffer(b"ACGT", dtype=np.uint8)[codes].tobytes().decode()


def records(path: Path) -> list[tuple[str, int]]:
    """(name, length) of each FASTA record."""
    out, name, n = [], None, 0
    with open(path) as f:
        for line in f:
            if line.startswith(">"):
                if name is not None:
                    out.append((name, n))
                name, n = line[1:].split()[0], 0
            else:
                n += len(line.strip())
    if name is not None:
        out.append((name, n))
    return out


def write_fasta(path: Path, name: str, description: str, seq: str, width: int = 80) -> None:
    with open(path, "w") as f:
        f.write(f">{name} {description}\n")
        for i in range(0, len(seq), width):
            f.write(seq[i : i + width] + "\n")


def main(out: Path) -> None:
    genomes = out / "genomes"
    genomes.mkdir(parents=True, exist_ok=True)
    missing = [str(p) for p in (KMER_EXAMPLES, LAMBDA) if not p.exists()]
    if missing:
        raise SystemExit(f"missing {missing}: install the Debian packages kmer-examples and bowtie2-examples")
    with tarfile.open(KMER_EXAMPLES) as tar:
        for label, member in FROM_TARBALL.items():
            target = genomes / f"{label}.fa"
            if not target.exists():
                target.write_bytes(tar.extractfile(member).read())
    target = genomes / "lambda_phage.fa"
    if not target.exists():
        target.write_bytes(gzip.decompress(LAMBDA.read_bytes()))
    target = genomes / "simulated.fa"
    if not target.exists():
        write_fasta(target, "sim1", "simulated order-3 Markov genome, seed 7", simulate(1_000_000, seed=7))

    with open(out / "index.bed", "w") as index, open(out / "query.bed", "w") as query:
        for fa in sorted(genomes.glob("*.fa")):
            for name, length in records(fa):
                cut = int(length * INDEX_FRACTION)
                index.write(f"{name}\t0\t{cut}\t{fa.stem}\n")
                query.write(f"{name}\t{cut}\t{length}\t{fa.stem}\n")
    for fa in sorted(genomes.glob("*.fa")):
        print(f"{fa}: " + ", ".join(f"{n} ({length:,} bp)" for n, length in records(fa)))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "build/genomics"))
