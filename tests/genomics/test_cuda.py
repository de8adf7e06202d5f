"""The CUDA k-mer counts and one-hot against the CPU kernels, bit for bit, on windows of a real
genome and on the edge cases of the rules (not-ACGT bytes, lowercase, records shorter than k,
empty records), run on Numba's CUDA simulator (HPCPREP_TEST_CUDA=device: on a GPU); and the
stages' CUDA variants against their CPU variants."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hpcprep_genomics import kernels
from hpcprep_genomics.encoders import KmerCounts, Onehot

from tests.conftest import encode_on_both_variants, require_cuda
from tests.genomics.genome_data import lambda_genome, read_fasta

require_cuda()
from hpcprep_genomics.kernels import cuda as gpu  # noqa: E402

EDGES = [
    b"",
    b"A",
    b"ACG",
    b"ACGTacgtNNACGTTGCA",
    b"GGGGCCCCAAAATTTTACGTRYKM",
    b"nnnnNNNN",
    b"acgtACGTAcGt-ACGT.ACGT",
    bytes(range(256)),  # every byte value once
]


@pytest.fixture(scope="module")
def windows() -> list[bytes]:
    """Windows of the lambda phage genome: 12 of 250 bases, one of 37 (the simulator runs a thread per base)."""
    seq = read_fasta(lambda_genome())[0][1]
    out = [seq[i : i + 250] for i in range(10_000, 13_000, 250)] + [seq[20_000:20_037]]
    # lowercase a stretch and put a gap in another, as soft-masked assemblies have
    out[1] = out[1][:100] + out[1][100:180].lower() + out[1][180:]
    out[2] = out[2][:50] + b"N" * 30 + out[2][80:]
    return out


@pytest.mark.parametrize("canonical", [False, True])
@pytest.mark.parametrize("k", [1, 3, 4, 7])
def test_kmer_counts_batch_equals_the_cpu_kernel(windows, k, canonical):
    records = windows + EDGES
    got = gpu.kmer_counts_batch(records, k, canonical)
    assert got.dtype == np.uint32 and got.shape == (len(records), 4**k)
    for row, rec in zip(got, records, strict=True):
        assert np.array_equal(row, kernels.kmer_counts(rec, k, canonical=canonical))
    assert got[: len(windows)].sum() > 0


def test_kmer_counts_single_record_and_input_types(windows):
    text = windows[0].decode()
    expected = kernels.kmer_counts(text, 5, canonical=True)
    for form in (text, windows[0], np.frombuffer(windows[0], dtype=np.uint8)):
        assert np.array_equal(gpu.kmer_counts(form, 5, canonical=True), expected)


def test_kmer_counts_in_parts_when_the_table_is_large(windows, monkeypatch):
    """A batch whose count table passes the device budget is counted a few records at a time."""
    monkeypatch.setattr(gpu, "COUNT_TABLE_BYTES", 3 * 4**6 * 4)  # three rows at k = 6
    got = gpu.kmer_counts_batch(windows, 6)
    assert np.array_equal(got, np.stack([kernels.kmer_counts(w, 6) for w in windows]))


def test_kmer_counts_refuses_what_the_cpu_refuses():
    for k in (0, 14):
        with pytest.raises(ValueError) as cpu_error:
            kernels.kmer_counts(b"ACGT", k)
        with pytest.raises(ValueError) as gpu_error:
            gpu.kmer_counts(b"ACGT", k)
        assert str(gpu_error.value) == str(cpu_error.value)
    assert gpu.kmer_counts_batch([], 3).shape == (0, 64)


@pytest.mark.parametrize("layout", ["LC", "CL"])
@pytest.mark.parametrize(("dtype", "n_value"), [(np.uint8, 0), (np.float32, 0.25), (np.bool_, False)])
def test_onehot_batch_equals_the_cpu_kernel(windows, layout, dtype, n_value):
    records = windows[:4] + EDGES
    got = gpu.onehot_batch(records, layout, dtype, n_value)
    for arr, rec in zip(got, records, strict=True):
        expected = kernels.onehot(rec, layout, dtype, n_value)
        assert arr.dtype == expected.dtype and arr.shape == expected.shape
        assert np.array_equal(arr, expected)
    assert gpu.onehot(windows[0], layout, dtype, n_value).sum() == len(windows[0]) - windows[0].upper().count(b"N")


def test_onehot_refuses_what_the_cpu_refuses():
    for args in (("XY", np.uint8, 0), ("LC", np.uint8, 0.5), ("LC", np.complex64, 0)):
        with pytest.raises((ValueError, TypeError)) as cpu_error:
            kernels.onehot(b"ACGT", *args)
        with pytest.raises(cpu_error.type) as gpu_error:
            gpu.onehot(b"ACGT", *args)
        assert str(gpu_error.value) == str(cpu_error.value)


def _batch(seqs: list[bytes]) -> dict:
    return {
        "source": np.array(["lambda.fa"] * len(seqs), dtype=object),
        "record_id": np.array([f"lambda:{i}" for i in range(len(seqs))], dtype=object),
        "sequence": np.array([s.decode() for s in seqs], dtype=object),
    }


@pytest.mark.parametrize(
    ("cls", "params"),
    [
        (KmerCounts, {"k": 4}),
        (KmerCounts, {"k": 6, "canonical": True}),
        (KmerCounts, {"k": 9}),  # sparse: the CUDA variant keeps the CPU kernel
        (Onehot, {}),
        (Onehot, {"layout": "CL", "dtype": "float32", "n_value": 0.25}),
    ],
)
def test_cuda_variant_of_the_stage_gives_the_cpu_columns(windows, cls, params):
    cpu_columns, gpu_columns = encode_on_both_variants(cls, params, _batch(windows[:6]))
    for name, cpu_column in cpu_columns.items():
        gpu_column = gpu_columns[name]
        assert isinstance(gpu_column, pa.Array) and gpu_column.type == cpu_column.type
        assert gpu_column.equals(cpu_column), name


def test_gpu_batches_of_dense_counts_stay_under_256_mib():
    from hpcprep import ClusterInfo
    from hpcprep.placement import DefaultPlacementPolicy

    gpus = ClusterInfo(cpus=16, gpus=1)
    sizes = {
        k: DefaultPlacementPolicy().hpcprep_place(KmerCounts({"k": k, "format": "dense"}), gpus).batch_size
        for k in (4, 8, 12)
    }
    assert sizes == {4: 4096, 8: 1024, 12: 4}
