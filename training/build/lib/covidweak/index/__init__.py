"""The persistent case index of recommendation embeddings searched by ``covidweak similar`` (DuCN Sect. 2.3).

``CaseIndex`` (case_index.py) is the API; storage.py holds the on-disk format, search.py the
exact and FAISS searches, resume.py what an interrupted build still has to add.
"""

from .case_index import APPROXIMATE_FROM_SLICES, DUCN_EMBEDDING_DIM, RANKINGS, CaseIndex, aggregate_embedding
from .resume import pending_studies
from .storage import FORMAT_VERSION

__all__ = ["APPROXIMATE_FROM_SLICES", "DUCN_EMBEDDING_DIM", "FORMAT_VERSION", "RANKINGS", "CaseIndex",
           "aggregate_embedding", "pending_studies"]
