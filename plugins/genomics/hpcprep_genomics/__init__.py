"""hpcprep-genomics: DNA to one-hot, 2-bit, k-mers, tokens, de Bruijn graphs and GNN embeddings."""

__version__ = "0.1.0"
