"""Numba kernels for DNA: plain functions over NumPy arrays, usable without Ray.

Conventions (every kernel): ``seq`` is ``bytes``, ``bytearray``, an ASCII ``str`` or a 1-D
``uint8`` array; base codes ``A=0, C=1, G=2, T=3``, lowercase counts as uppercase, and
every other byte is "not ACGT" (code 4). A k-mer's code is its base-4 number, first base
most significant; a k-mer touching a not-ACGT byte is skipped; canonical = the smaller of
the code and the code of the reverse complement (``jellyfish count -C``). All kernels are
single-threaded. :mod:`.reference` holds slow pure-Python references used by the tests.
"""

from hpcprep.lazy import lazy_attributes

# Imported on first use (a run's driver validates and plans, it calls no kernel): see hpcprep.lazy.
_KERNELS = {
    "debruijn_graph": ".graph",
    "canonical_kmer_indices": ".kmers",
    "kmer_counts": ".kmers",
    "kmer_counts_batch": ".kmers",
    "kmer_counts_sparse": ".kmers",
    "kmer_spectrum": ".kmers",
    "kmer_spectrum_batch": ".kmers",
    "Records": ".sequence",
    "encode_bases": ".sequence",
    "join_records": ".sequence",
    "onehot": ".sequence",
    "onehot_batch": ".sequence",
    "onehot_joined": ".sequence",
    "pack_2bit": ".sequence",
    "reverse_complement": ".sequence",
    "unpack_2bit": ".sequence",
    "tokenize": ".tokens",
    "vocabulary": ".tokens",
}
__getattr__, __dir__ = lazy_attributes(__name__, _KERNELS)

__all__ = [*sorted(_KERNELS), "warm_up"]


def warm_up() -> None:
    """Compile (or load from the Numba cache) every kernel once, e.g. in an actor's setup."""
    from .graph import debruijn_graph
    from .kmers import kmer_counts, kmer_counts_sparse, kmer_spectrum, warm_up_internal
    from .sequence import encode_bases, onehot, pack_2bit, reverse_complement, unpack_2bit
    from .tokens import tokenize

    warm_up_internal()
    s = b"ACGTNacgtRYACGTACGTAAAACCCCGGGGTTTT" * 40
    kmer_counts(s, 3)
    kmer_counts(s, 3, canonical=True)
    kmer_counts_sparse(s, 15)
    kmer_counts_sparse(s, 15, canonical=True)
    kmer_spectrum(s, 3)
    encode_bases(s)
    onehot(s)
    onehot(s, layout="CL")
    onehot(s, dtype="float32", n_value=0.25)
    onehot(s, layout="CL", dtype="float32", n_value=0.25)
    packed, mask = pack_2bit(s)
    unpack_2bit(packed, len(s), mask)
    reverse_complement(s)
    tokenize(s, "kmer", k=6)
    tokenize(s, "char")
    debruijn_graph(s, 15)
