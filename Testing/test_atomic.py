"""covidweak.io.atomic: the one way the package writes a file without ever leaving half of it."""

import os

import pytest

from covidweak.errors import InputError
from covidweak.io.atomic import replacing, write_text


def test_new_content_replaces_old_and_no_temporary_file_stays(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text("old")
    write_text(target, "new\n")
    assert target.read_text() == "new\n" and [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_an_error_keeps_the_old_file_and_removes_the_temporary_one(tmp_path):
    target = tmp_path / "weights.pt"
    target.write_bytes(b"good")
    with pytest.raises(RuntimeError):
        with replacing(target) as temp:
            temp.write_bytes(b"ha")
            raise RuntimeError("writer failed half-way")
    assert target.read_bytes() == b"good" and [p.name for p in tmp_path.iterdir()] == ["weights.pt"]


def test_the_temporary_name_keeps_the_suffix_a_writer_needs(tmp_path):
    with replacing(tmp_path / "ct.nii.gz", suffix=".tmp.nii.gz") as temp:
        assert temp.parent == tmp_path and temp.name.endswith(".tmp.nii.gz") and temp.name.startswith(".ct.nii.gz.")
        temp.write_bytes(b"x")
    assert (tmp_path / "ct.nii.gz").read_bytes() == b"x"


def test_refuses_to_replace_a_file_that_appeared_meanwhile(tmp_path):
    target = tmp_path / "labels.nrrd"
    with pytest.raises(InputError, match="already exists"):
        with replacing(target, overwrite=False) as temp:
            temp.write_bytes(b"mine")
            target.write_bytes(b"theirs")  # another process finished first
    assert target.read_bytes() == b"theirs" and len(list(tmp_path.iterdir())) == 1


def test_durable_write_gives_the_same_file(tmp_path):
    write_text(tmp_path / "index.json", "{}\n", durable=True)
    assert (tmp_path / "index.json").read_text() == "{}\n"


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_outputs_get_the_users_usual_permissions_not_private_ones(tmp_path):
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "report.html", "<p>")
    finally:
        os.umask(old)
    assert (tmp_path / "report.html").stat().st_mode & 0o777 == 0o644
