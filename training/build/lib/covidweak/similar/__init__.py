"""Similar-case retrieval with DuCN (Peng et al.): slice inputs, embeddings, metrics and the case library.

The index storage and nearest-neighbour search live in :mod:`covidweak.index`; this package turns
CTs into DuCN inputs and 128-d embeddings, fills an index from a dataset, answers a query, and
evaluates detection and retrieval.
"""
