"""hpcprep-protein: sequences and structures to secondary structure, contact graphs and per-residue features."""

__version__ = "0.1.0"
