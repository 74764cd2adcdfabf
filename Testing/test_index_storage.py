"""Case index on disk: round trip, incremental add/remove, rejected folders, and kills during writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from covidweak.errors import InputError
from covidweak.index import CaseIndex, FORMAT_VERSION, aggregate_embedding, pending_studies
from covidweak.index.storage import GENERATION_FILE, HEADER_NAME
from covidweak.records import StudyRecord

SHA = "a" * 64
DIM = 8


def _vectors(seed: int, rows: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((rows, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _study(i: int, **extra) -> dict:
    return dict(study_id=f"study{i}", patient_id=f"patient{i // 2}", diagnosis="covid",
                source_path=f"/data/study{i}/ct.nii.gz", **extra)


def _filled(folder: Path, count: int = 3) -> CaseIndex:
    index = CaseIndex.create(folder, SHA, dim=DIM)
    for i in range(count):
        index.add_study(_study(i), _vectors(i, 4 + i), range(10 + i, 14 + 2 * i))
    return index


def _assert_one_line(error: pytest.ExceptionInfo, *words: str) -> None:
    message = str(error.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_round_trip_keeps_vectors_metadata_and_aggregates(tmp_path):
    index = CaseIndex.create(tmp_path / "ix", SHA, dim=DIM)
    index.add_study(_study(0, age=61, site="A, ward \"3\"", path=Path("/x/y")), _vectors(0, 5), [3, 4, 5, 6, 7])
    index.add_study(_study(1), _vectors(1, 2), [9, 2])

    again = CaseIndex.open(tmp_path / "ix", SHA)
    assert (len(again), again.num_slices, again.dim, again.model_sha256) == (2, 7, DIM, SHA)
    assert again.study_ids() == ["study0", "study1"]
    assert again.study("study0") == dict(_study(0), age=61, site="A, ward \"3\"", path="/x/y", num_slices=5,
                                         slice_numbers=[3, 4, 5, 6, 7])
    np.testing.assert_array_equal(again._vectors.view, np.concatenate([_vectors(0, 5), _vectors(1, 2)]))
    np.testing.assert_allclose(again._aggregates.view[1], aggregate_embedding(_vectors(1, 2)))
    nearest = again.search_slices(_vectors(1, 2)[1:], 1)[0][0]
    assert (nearest["study_id"], nearest["slice"]) == ("study1", 2)
    assert nearest["distance"] == pytest.approx(0.0, abs=1e-3)


def test_aggregate_is_the_plain_mean():
    """Not normalised: two orthogonal unit slices give a centroid of length 0.707, one slice twice gives 1."""
    vectors = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    np.testing.assert_allclose(aggregate_embedding(vectors), [0.5, 0.5], rtol=1e-6)
    np.testing.assert_allclose(aggregate_embedding(vectors[[0, 0]]), [1.0, 0.0], rtol=1e-6)


def test_an_index_of_format_1_is_refused_with_the_rebuild_hint(tmp_path):
    """Format 1 stored normalised aggregates; mixing them with centroids would rank studies wrongly."""
    index = CaseIndex.create(tmp_path / "ix", "a" * 64, dim=8)
    index.add_study(dict(study_id="s", patient_id="p", diagnosis="covid", source_path="/s.nii.gz"), _vectors(0, 2), [0, 1])
    header = json.loads((tmp_path / "ix" / HEADER_NAME).read_text())
    (tmp_path / "ix" / HEADER_NAME).write_text(json.dumps({**header, "format_version": 1}))
    with pytest.raises(InputError, match="format version 1, this covidweak reads version 2: rebuild it"):
        CaseIndex.open(tmp_path / "ix")


def test_incremental_add_and_remove_persist(tmp_path):
    index = _filled(tmp_path / "ix", 3)
    index.remove_study("study1")
    index.add_study(_study(7), _vectors(7, 3), [0, 1, 2])
    assert index.study_ids() == ["study0", "study2", "study7"]

    again = CaseIndex.open(tmp_path / "ix")
    assert again.study_ids() == ["study0", "study2", "study7"]
    assert again.num_slices == 4 + 6 + 3 and not again.has_study("study1")
    np.testing.assert_array_equal(again._vectors.view[4:10], _vectors(2, 6))
    assert again.study("study7")["slice_numbers"] == [0, 1, 2]
    kept = sorted(p.name for p in (tmp_path / "ix").iterdir())
    assert kept == ["aggregates-1.f32", HEADER_NAME, "slices-1.csv", "studies-1.csv", "vectors-1.f32"]
    again.remove_studies(["study0", "study7"])
    assert CaseIndex.open(tmp_path / "ix").study_ids() == ["study2"]


def test_bad_additions_are_rejected_and_change_nothing(tmp_path):
    index = _filled(tmp_path / "ix", 1)
    bad = [
        ((_study(0), _vectors(5, 2), [0, 1]), "already in the case index"),
        ((_study(5), _vectors(5, 2)[:, :4].copy(), [0, 1]), "shape"),
        ((_study(5), _vectors(5, 2).astype(np.float64), [0, 1]), "float32"),
        ((_study(5), np.full((2, DIM), np.nan, np.float32), [0, 1]), "NaN"),
        ((_study(5), _vectors(5, 2), [0]), "slice_numbers"),
        ((_study(5), _vectors(5, 2), [1, 1]), "repeat"),
        (({"study_id": "x"}, _vectors(5, 2), [0, 1]), "patient_id"),
        ((_study(5, scores=[1, 2]), _vectors(5, 2), [0, 1]), "scores"),
    ]
    for arguments, word in bad:
        with pytest.raises(InputError) as error:
            index.add_study(*arguments)
        _assert_one_line(error, word)
    with pytest.raises(InputError, match="twice"):
        index.add_studies([(_study(5), _vectors(5, 2), [0, 1]), (_study(5), _vectors(6, 2), [0, 1])])
    with pytest.raises(InputError, match="not in the case index"):
        index.remove_study("nobody")
    assert CaseIndex.open(tmp_path / "ix").study_ids() == ["study0"] == index.study_ids()


def test_a_stale_writer_is_refused(tmp_path):
    first = _filled(tmp_path / "ix", 1)
    second = CaseIndex.open(tmp_path / "ix")
    first.add_study(_study(1), _vectors(1, 2), [0, 1])
    with pytest.raises(InputError, match="another process"):
        second.add_study(_study(2), _vectors(2, 2), [0, 1])
    with pytest.raises(InputError, match="another process"):
        second.remove_study("study0")
    assert CaseIndex.open(tmp_path / "ix").study_ids() == ["study0", "study1"]


def test_create_refuses_a_folder_with_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InputError) as error:
        CaseIndex.create(tmp_path, SHA)
    _assert_one_line(error, "already holds files")
    _filled(tmp_path / "ix", 1)
    with pytest.raises(InputError):
        CaseIndex.create(tmp_path / "ix", SHA)


def test_foreign_model_is_rejected(tmp_path):
    _filled(tmp_path / "ix", 1)
    with pytest.raises(InputError) as error:
        CaseIndex.open(tmp_path / "ix", "b" * 64)
    _assert_one_line(error, "aaaaaaaaaaaa", "bbbbbbbbbbbb", "rebuild")


def test_missing_and_empty_folders_are_rejected(tmp_path):
    with pytest.raises(InputError) as error:
        CaseIndex.open(tmp_path / "nothing")
    _assert_one_line(error, "does not exist", "covidweak index build")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError) as error:
        CaseIndex.open(tmp_path / "empty")
    _assert_one_line(error, "is empty")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "a.txt").write_text("x")
    with pytest.raises(InputError) as error:
        CaseIndex.open(tmp_path / "other")
    _assert_one_line(error, "not a covidweak case index")


def test_corrupt_and_other_version_indexes_are_rejected(tmp_path):
    def broken(name: str, damage) -> Path:
        folder = tmp_path / name
        _filled(folder, 2)
        damage(folder)
        return folder

    def truncate_vectors(folder: Path) -> None:
        path = folder / "vectors-0.f32"
        path.write_bytes(path.read_bytes()[:-5])

    def header_edit(**changes):
        def damage(folder: Path) -> None:
            data = json.loads((folder / HEADER_NAME).read_text())
            data.update(changes)
            (folder / HEADER_NAME).write_text(json.dumps(data))
        return damage

    cases = [
        (broken("truncated", truncate_vectors), "truncated"),
        (broken("badjson", lambda f: (f / HEADER_NAME).write_text('{"format": "covidweak-case-index",')), "not valid JSON"),
        (broken("version", header_edit(format_version=FORMAT_VERSION + 1)), "format version"),
        (broken("counts", header_edit(studies=5)), "corrupt"),
        (broken("gone", lambda f: (f / "slices-0.csv").unlink()), "missing"),
    ]
    for folder, word in cases:
        with pytest.raises(InputError) as error:
            CaseIndex.open(folder)
        _assert_one_line(error, word)


def test_empty_index_and_k_larger_than_the_library(tmp_path):
    index = CaseIndex.create(tmp_path / "ix", SHA, dim=DIM)
    with pytest.raises(InputError) as error:
        index.search_studies(_vectors(0, 2), 1)
    _assert_one_line(error, "empty")
    index = CaseIndex.open(tmp_path / "ix")
    index.add_study(_study(0), _vectors(0, 3), [0, 1, 2])
    with pytest.raises(InputError) as error:
        index.search_studies(_vectors(0, 2), 2)
    _assert_one_line(error, "k=2", "1 studies")
    with pytest.raises(InputError) as error:
        index.search_slices(_vectors(0, 1), 4)
    _assert_one_line(error, "k=4", "3 slices")
    with pytest.raises(InputError, match="shape"):
        index.search_slices(_vectors(0, 1)[0], 1)


def test_open_or_create_resumes_a_build(tmp_path):
    first = CaseIndex.open_or_create(tmp_path / "ix", SHA, dim=DIM)
    first.add_study(_study(0), _vectors(0, 2), [0, 1])
    assert CaseIndex.open_or_create(tmp_path / "ix", SHA, dim=DIM).study_ids() == ["study0"]
    with pytest.raises(InputError, match="model sha256"):
        CaseIndex.open_or_create(tmp_path / "ix", "b" * 64, dim=DIM)
    with pytest.raises(InputError, match="8-d"):
        CaseIndex.open_or_create(tmp_path / "ix", SHA, dim=16)


def test_pending_studies_skips_indexed_records(tmp_path):
    index = _filled(tmp_path / "ix", 2)
    records = [StudyRecord(f"study{i}", "p", "covid", Path("/ct.nii.gz"), "phantom") for i in range(4)]
    assert [r.study_id for r in pending_studies(index, records)] == ["study2", "study3"]
    assert pending_studies(index, [{"study_id": "study1"}, {"study_id": "study9"}]) == [{"study_id": "study9"}]


# A child process that adds (or removes) a study and stops forever at its Nth fsync, so the
# parent can SIGKILL it at a known point of the write.
_CHILD = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    from covidweak.index import CaseIndex, storage

    folder, action, stop_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    index = CaseIndex.open(folder)
    real_fsync, calls = os.fsync, []

    def fsync_then_hang(fd):
        real_fsync(fd)
        calls.append(fd)
        if len(calls) == stop_at:
            print("writing", flush=True)
            time.sleep(600)

    storage.os.fsync = fsync_then_hang
    if action == "add":
        vectors = np.full((50, index.dim), index.dim ** -0.5, np.float32)
        index.add_study(dict(study_id="late", patient_id="p", diagnosis="cap", source_path="/late"), vectors, range(50))
    else:
        index.remove_study("study0")
    print("done", flush=True)
""")


def _kill_during(folder: Path, action: str, stop_at: int) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(folder), action, str(stop_at)],
                             stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "writing"
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=60)


@pytest.mark.slow
@pytest.mark.parametrize("action, stop_at", [("add", 1), ("add", 3), ("add", 5), ("remove", 2), ("remove", 5)])
def test_kill_during_a_write_leaves_the_previous_index_loadable(tmp_path, action, stop_at):
    """add: fsyncs 1-4 follow the four appends, 5 the new header's temp file before it replaces index.json.
    remove: fsyncs 1-4 follow the next generation's files, 5 the header's temp file."""
    folder = tmp_path / "ix"
    _filled(folder, 3)
    before = CaseIndex.open(folder)
    _kill_during(folder, action, stop_at)

    after = CaseIndex.open(folder, SHA)
    assert after.study_ids() == before.study_ids() and after.num_slices == before.num_slices
    np.testing.assert_array_equal(after._vectors.view, before._vectors.view)
    after.add_study(_study(9), _vectors(9, 2), [0, 1])  # cuts off the killed write's leftovers first
    final = CaseIndex.open(folder)
    assert final.study_ids() == before.study_ids() + ["study9"]
    np.testing.assert_array_equal(final._vectors.view[-2:], _vectors(9, 2))
    assert all(GENERATION_FILE.match(p.name) or p.name == HEADER_NAME for p in folder.iterdir())
