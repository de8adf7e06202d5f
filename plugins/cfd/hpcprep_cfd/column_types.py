"""``Input.types`` patterns of the columns cfd stages read (see ``hpcprep.Input``).

The driver matches them against the types earlier stages declare in ``outputs``: the cfd
readers write ``list<double>`` and ``list<int64>``, the encoders ``list<float32>``,
``list<uint8>`` and ``fixed_size_list<float64>[3]``. The stages convert what they read
with NumPy, so any float (or integer) list of the same shape serves as well.
"""

from __future__ import annotations

#: One flattened float array per row: vertices, centres, volumes, field values, samples.
FLOAT_LISTS = "list<double>|list<float*>|large_list<double>|large_list<float*>"
#: One flattened integer array per row: triangle vertex indices.
INDEX_LISTS = "list<int*>|list<uint*>|large_list<int*>|large_list<uint*>"
#: One flattened numeric array per row (grid values, occupancy, extra point data).
NUMERIC_LISTS = f"{FLOAT_LISTS}|{INDEX_LISTS}|list<bool>"
#: Three numbers per row: a grid's shape, origin or spacing. ("[[]" is a literal "[" in a
#: shell pattern, where "[3]" alone would be a character class.)
TRIPLES = "fixed_size_list<*>[[]3]|list<int*>|list<float*>|list<double>"
#: Text per row.
STRINGS = "string|large_string"
