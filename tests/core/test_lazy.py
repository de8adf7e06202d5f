"""``hpcprep.lazy``: package attributes and modules imported on first use, and all of them at once for a worker."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def probe(code: str) -> list[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True
    ).stdout.split()


def test_a_lazy_attribute_is_imported_when_first_read():
    out = probe(
        """
        import sys
        from hpcprep_genomics import kernels
        print("hpcprep_genomics.kernels.kmers" in sys.modules, "numba" in sys.modules)
        from hpcprep_genomics.kernels import kmer_counts   # a from-import reads the attribute
        print("hpcprep_genomics.kernels.kmers" in sys.modules, "numba" in sys.modules)
        print(kernels.kmer_counts is kmer_counts, "kmer_counts" in dir(kernels), "tokenize" in dir(kernels))
        print(int(kmer_counts(b"ACGTACGT", 2).sum()))      # the kernel itself: 7 two-mers
        try:
            kernels.no_such_kernel
        except AttributeError as exc:
            print("AttributeError" if "no_such_kernel" in str(exc) else exc)
        """
    )
    assert out == ["False", "False", "True", "True", "True", "True", "True", "7", "AttributeError"]


def test_a_lazy_module_runs_when_an_attribute_is_read_and_load_lazy_loads_everything_named():
    out = probe(
        """
        import sys
        from hpcprep.lazy import lazy_module, load_lazy
        from hpcprep_cfd.openfoam import reader           # names polymesh, foamfile, geometry, fields lazily
        from hpcprep_protein import kernels               # names its kernels lazily
        print("numba" in sys.modules)
        print(reader.polymesh.MESH_FILES[0], "numba" in sys.modules)
        print(lazy_module("hpcprep_cfd.openfoam.polymesh") is sys.modules["hpcprep_cfd.openfoam.polymesh"])
        loaded = load_lazy()
        print("hpcprep_protein.kernels.dssp" in loaded, "hpcprep_cfd.openfoam.geometry" in loaded)
        print(callable(sys.modules["hpcprep_cfd.openfoam.geometry"].mesh_geometry))
        """
    )
    assert out == ["False", "points", "True", "True", "True", "True", "True"]


def test_a_lazy_attribute_named_like_its_module_is_the_function_whoever_imported_the_module_first():
    # cfd's kernels.repair lives in kernels/repair.py: importing that module first binds the package's attribute
    # ``repair`` to the module, as every import of a submodule does; the package still answers the function.
    out = probe(
        """
        import hpcprep_cfd.kernels.repair
        from hpcprep_cfd import kernels
        from hpcprep_cfd.kernels import repair
        print(callable(kernels.repair), kernels.repair is repair, kernels.repair.__module__)
        """
    )
    assert out == ["True", "True", "hpcprep_cfd.kernels.repair"]
