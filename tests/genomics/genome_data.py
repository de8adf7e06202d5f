"""Real genomes from Debian packages, unpacked once into ``build/test-data/genomics/``.

``mtb_genome()`` (M. tuberculosis H37Rv) and ``leprae_genome()`` (M. leprae TN) come from
``kmer-examples``; ``lambda_genome()`` (phage lambda) from ``bowtie2-examples``. ``make
test`` installs both packages. Without them a test skips with the reason on a user's
machine and fails when ``CI`` is set (the rule of ``tests.conftest.require_tool``).
Extraction is safe when several processes do it at once (temp file + rename).
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from tests.conftest import unavailable

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / "build" / "test-data" / "genomics"

KMER_EXAMPLES = Path("/usr/share/doc/kmer-examples/test_data.tar.gz")
LAMBDA_GZ = Path("/usr/share/doc/bowtie2/examples/reference/lambda_virus.fa.gz")
MTB_MEMBER = "GCF_000195955.2_ASM19595v2_genomic.fna"
LEPRAE_MEMBER = "GCF_000195855.1_ASM19585v1_genomic.fna"


def _missing(path: Path, package: str):
    __tracebackhide__ = True
    unavailable(f"{path} is missing (Debian package {package})")


def _publish(target: Path, write) -> Path:
    """Create ``target`` by ``write(file)`` into a temp file in the same folder, then rename."""
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _from_kmer_examples(member: str) -> Path:
    target = CACHE / member
    if target.exists():
        return target
    if not KMER_EXAMPLES.exists():
        _missing(KMER_EXAMPLES, "kmer-examples")

    def write(out):
        with tarfile.open(KMER_EXAMPLES, "r:gz") as tar:
            src = tar.extractfile(member)
            if src is None:
                raise FileNotFoundError(f"{member} not in {KMER_EXAMPLES}")
            shutil.copyfileobj(src, out)

    return _publish(target, write)


def mtb_genome() -> Path:
    """FASTA of the complete M. tuberculosis H37Rv genome (NC_000962.3, 4.41 Mb, one record)."""
    return _from_kmer_examples(MTB_MEMBER)


def leprae_genome() -> Path:
    """FASTA of the complete M. leprae TN genome (NC_002677.1, 3.27 Mb, one record)."""
    return _from_kmer_examples(LEPRAE_MEMBER)


def lambda_genome() -> Path:
    """FASTA of the phage lambda genome (NC_001416.1, 48.5 kb, one record)."""
    target = CACHE / "lambda_virus.fa"
    if target.exists():
        return target
    if not LAMBDA_GZ.exists():
        _missing(LAMBDA_GZ, "bowtie2-examples")

    def write(out):
        with gzip.open(LAMBDA_GZ, "rb") as src:
            shutil.copyfileobj(src, out)

    return _publish(target, write)


def read_fasta(path: Path) -> list[tuple[str, bytes]]:
    """``(name, sequence)`` of each record: a minimal reader for tests (lines joined, CR dropped)."""
    records: list[tuple[str, bytes]] = []
    name = None
    lines: list[bytes] = []
    with open(path, "rb") as f:
        for line in f:
            line = line.rstrip(b"\r\n")
            if line.startswith(b">"):
                if name is not None:
                    records.append((name, b"".join(lines)))
                name = line[1:].split(maxsplit=1)[0].decode() if line[1:].strip() else ""
                lines = []
            elif name is not None:
                lines.append(line.strip())
    if name is not None:
        records.append((name, b"".join(lines)))
    return records
