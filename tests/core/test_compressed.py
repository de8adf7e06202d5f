"""hpcprep.compressed: the one place readers undo gzip and BGZF, checked against files the gzip tool writes."""

import io
import subprocess

import pytest
from hpcprep.compressed import (
    DECOMPRESS_ERRORS,
    DamagedGzip,
    compression_of,
    gunzip,
    open_decompressed,
    read_head,
)
from hpcprep_genomics.fastx import bgzf_compress

TEXT = b"".join(b">r%d\n" % i + b"ACGT" * 30 + b"\n" for i in range(2000))


@pytest.fixture
def gz_file(tmp_path):
    """TEXT compressed by the gzip tool, as users' files are."""
    path = tmp_path / "text.fa"
    path.write_bytes(TEXT)
    subprocess.run(["gzip", "-k", str(path)], check=True)
    return tmp_path / "text.fa.gz"


def test_compression_told_from_the_first_bytes(gz_file):
    assert compression_of(TEXT[:18]) == "plain"
    assert compression_of(gz_file.read_bytes()[:18]) == "gzip"
    assert compression_of(bgzf_compress(TEXT)[:18]) == "bgzf"
    assert compression_of(b"") == "plain"


def test_gunzip_whole_files(gz_file):
    assert gunzip(TEXT, "plain.fa") is TEXT  # not gzip: unchanged, not copied
    assert gunzip(gz_file.read_bytes(), "x") == TEXT
    assert gunzip(bgzf_compress(TEXT), "x") == TEXT  # every BGZF block, not just the first
    cut = gz_file.read_bytes()[:-100]
    with pytest.raises(DamagedGzip, match=r"^reads/cut\.fa\.gz: damaged or truncated gzip data: "):
        gunzip(cut, "reads/cut.fa.gz")
    damaged = bytearray(gz_file.read_bytes())
    damaged[-8] ^= 0xFF  # the CRC
    with pytest.raises(DamagedGzip, match="damaged or truncated gzip data"):
        gunzip(bytes(damaged), "x")


def test_a_cut_stream_keeps_every_line_before_the_cut(gz_file):
    data = gz_file.read_bytes()
    stream, kind = open_decompressed(io.BytesIO(data[: len(data) // 2]))
    assert kind == "gzip"
    lines = []
    with pytest.raises(DECOMPRESS_ERRORS):
        for line in stream:
            lines.append(line)
    got = b"".join(lines)
    assert len(got) > len(TEXT) // 4 and TEXT.startswith(got)
    plain, kind = open_decompressed(io.BytesIO(TEXT))
    assert kind == "plain" and plain.read() == TEXT


def test_read_head(gz_file, tmp_path):
    assert read_head(str(gz_file), 100) == TEXT[:100]
    assert read_head(str(gz_file.with_suffix("")), 100) == TEXT[:100]  # the plain copy
    (tmp_path / "cut.gz").write_bytes(gz_file.read_bytes()[:30])
    with pytest.raises(DamagedGzip, match=r"cut\.gz: damaged or truncated gzip data"):
        read_head(str(tmp_path / "cut.gz"), 4096)
    with pytest.raises(OSError):
        read_head(str(tmp_path / "missing.gz"), 10)
