"""OpenFOAM cases for hpcprep-cfd: file parsing, polyMesh, exact cell geometry, fields, the reader.

- ``foamfile``: FoamFile headers, dictionaries and lists (ASCII/binary, gzip, 32/64-bit labels).
- ``polymesh``: points, faces, owner, neighbour, boundary of a polyMesh directory.
- ``geometry``: Numba kernels for face centres/areas and cell centres/volumes (``reference``: NumPy).
- ``fields``: volScalarField / volVectorField values.
- ``reader``: the ``cfd.openfoam`` stage.
"""
