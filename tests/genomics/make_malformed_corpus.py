"""Write the malformed FASTA and FASTQ files of ``tests/data/malformed/{fasta,fastq}``.

The files are committed; this script says how each was made, and makes them again
(byte for byte: fixed seeds, fixed gzip timestamps) after a change of mind. The
message each file must produce is in ``expected.toml`` beside it, checked by
``tests/genomics/test_malformed.py``.

    python tests/genomics/make_malformed_corpus.py
"""

from __future__ import annotations

import gzip
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "plugins" / "genomics"))

from hpcprep_genomics.fastx import BGZF_BLOCK, bgzf_compress  # noqa: E402

CORPUS = HERE.parent / "data" / "malformed"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))


def seq(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("ACGT") for _ in range(n))


def fasta(records: list[tuple[str, str]], width: int = 60) -> bytes:
    out = []
    for name, s in records:
        out.append(f">{name}\n")
        out.extend(s[i : i + width] + "\n" for i in range(0, len(s), width))
    return "".join(out).encode()


def fastq(reads: list[tuple[str, str]]) -> bytes:
    return "".join(f"@{n}\n{s}\n+\n{'I' * len(s)}\n" for n, s in reads).encode()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def bad_gzip_header(data: bytes) -> bytes:
    """The gzip magic, then a compression method no gzip reader knows (not 8, deflate)."""
    packed = bytearray(gz(data))
    packed[2] = 7
    return bytes(packed)


def bad_crc(data: bytes) -> bytes:
    """Whole gzip data whose CRC-32 trailer does not match what it holds."""
    packed = bytearray(gz(data))
    packed[-8] ^= 0xFF
    return bytes(packed)


def bgzf_bad_block(data: bytes) -> bytes:
    """BGZF whose second block's deflate data is overwritten: the block sizes still walk."""
    assert len(data) > 2 * BGZF_BLOCK, "needs at least three blocks"
    packed = bytearray(bgzf_compress(data))
    first = int.from_bytes(packed[16:18], "little") + 1  # BSIZE + 1: the first block's length
    for i in range(first + 40, first + 80):
        packed[i] = 0xFF
    return bytes(packed)


def bgzf_cut_header(data: bytes) -> bytes:
    """Whole BGZF blocks, then a block header whose extra field is cut off (a crash once)."""
    return bgzf_compress(data)[:-28] + b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff\x40\x00BC\x02\x00"


def fasta_cases() -> dict[str, bytes]:
    rng = random.Random(11)
    big = [(f"r{i}", seq(rng, 30_000)) for i in range(5)]
    return {
        "not_fasta.fa": b"hello world\nthis is not FASTA\n",
        "binary.fa": PNG,
        "sequence_before_header.fa": b"ACGTACGT\n>late\nACGT\n",
        "comments_only.fa": b"; a comment\n; and another\n",
        "empty_record.fa": b">a\nACGT\n>empty\n>b\nGGCC\n",
        "duplicate_name.fa": b">a\nACGT\n>a\nGGCC\n>c\nTTTT\n",
        "no_name.fa": b">\nACGT\n>b\nGGCC\n",
        "illegal_char.fa": b">a\nACGTACGT\nAC7T\n>b\nGGCC\n",
        "nul_byte.fa": b">a\nAC\x00T\n>b\nGGCC\n",
        "non_utf8_header.fa": b">caf\xe9 au lait\nACGT\n>b\nGGCC\n",
        "truncated.fa.gz": gz(fasta(big))[: int(len(gz(fasta(big))) * 0.6)],
        "bad_gzip_header.fa.gz": bad_gzip_header(fasta(big[:1])),
        "bad_crc.fa.gz": bad_crc(fasta(big[:2])),
        "bgzip_bad_block.fa.gz": bgzf_bad_block(fasta(big)),
        "bgzip_no_eof.fa.gz": bgzf_compress(fasta(big[:2]))[:-28],
        "bgzip_cut_header.fa.gz": bgzf_cut_header(fasta([("a", "ACGT" * 30), ("b", "GGCC" * 30)])),
    }


def fastq_cases() -> dict[str, bytes]:
    rng = random.Random(12)
    good = [(f"g{i}", seq(rng, 40)) for i in range(3)]
    many = [(f"r{i}", seq(rng, 150)) for i in range(2000)]
    around = fastq(good[:1]), fastq(good[1:])
    return {
        "not_fastq.fq": b"just some text\nnothing else\n",
        "binary.fq": PNG,
        "missing_plus.fq": around[0] + b"@noplus\nACGT\nIIII\n" + around[1],
        "length_mismatch.fq": around[0] + b"@mismatch\nACGTA\n+\nIIII\n" + around[1],
        "illegal_char.fq": around[0] + b"@digit\nAC9T\n+\nIIII\n" + around[1],
        "non_ascii_sequence.fq": around[0] + b"@accent\nAC\xc3\xa9T\n+\nIIIII\n" + around[1],
        "bad_quality.fq": around[0] + b"@space\nACGT\n+\nI II\n" + around[1],
        "plus_names_another_read.fq": around[0] + b"@mine\nACGT\n+other\nIIII\n" + around[1],
        "no_name.fq": around[0] + b"@\nACGT\n+\nIIII\n" + around[1],
        "empty_read.fq": around[0] + b"@trimmed\n\n+\n\n" + around[1],
        "truncated_record.fq": fastq(good) + b"@cut\nACGT\n+\n",
        "truncated.fq.gz": gz(fastq(many))[: int(len(gz(fastq(many))) * 0.37)],
        "bad_gzip_header.fq.gz": bad_gzip_header(fastq(good)),
        "bad_crc.fq.gz": bad_crc(fastq(good)),
        "bgzip_bad_block.fq.gz": bgzf_bad_block(fastq(many)),
    }


def main() -> None:
    for kind, cases in (("fasta", fasta_cases()), ("fastq", fastq_cases())):
        folder = CORPUS / kind
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in cases.items():
            (folder / name).write_bytes(data)
        print(f"{folder}: {len(cases)} files")


if __name__ == "__main__":
    main()
