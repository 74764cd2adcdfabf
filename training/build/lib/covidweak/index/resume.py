"""Resuming an interrupted index build: which studies of a data source are not indexed yet.

Every ``add_study`` is committed on its own, so a build killed halfway leaves an index holding
exactly the studies added before the kill; running the build again only has to embed the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .case_index import CaseIndex


def record_study_id(record) -> str:
    """The study_id of a dict-like record or of an object with a ``study_id`` attribute (StudyRecord)."""
    return str(record["study_id"] if isinstance(record, Mapping) else record.study_id)


def pending_studies(index: CaseIndex, records: Iterable) -> list:
    """The records whose study is not in ``index`` yet, in their original order."""
    return [record for record in records if not index.has_study(record_study_id(record))]
