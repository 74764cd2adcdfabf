"""No code path of the pipeline opens a network connection at run time (issue #7).

Hospitals run the tools on machines without internet, and patient data must
never leave them. Sockets are blocked in this process (connect, connect_ex,
create_connection and name lookup raise and are recorded) while a small
end-to-end path runs through ``covidweak.cli.main``: phantom generation,
``segment`` with the shipped cam-light weights, ``severity --from-segment``,
``index build`` and ``similar`` with the shipped ducn-light weights.
"""

from __future__ import annotations

import json
import socket

import pytest

from covidweak import cli

pytestmark = pytest.mark.slow


@pytest.fixture
def no_network(monkeypatch):
    """Make every way of reaching another host raise, and list the attempts."""
    attempts = []

    def refuse(what):
        def blocked(*args, **kwargs):
            attempts.append((what, args[1:] if what.startswith("socket.") else args))
            raise OSError(f"network blocked by test: {what}")

        return blocked

    monkeypatch.setattr(socket.socket, "connect", refuse("socket.connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("socket.connect_ex"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    return attempts


def test_the_pipeline_runs_offline(no_network, tmp_path, capsys):
    data = tmp_path / "data"
    phantom = ["phantom", "--out", data, "--patients", "2", "--studies-per-patient", "1", "--seed", "4",
               "--size", "64", "--slices", "24", "--mix", "covid=1"]
    assert cli.main([str(part) for part in phantom]) == 0, capsys.readouterr().err
    ct = sorted(data.glob("*/ct.nii.gz"))[0]
    steps = [
        ["segment", ct, "--out", tmp_path / "seg", "--method", "cam", "--weights", "cam-light", "--device", "cpu"],
        ["severity", ct, "--out", tmp_path / "severity", "--from-segment", tmp_path / "seg", "--device", "cpu"],
        ["index", "build", "--data", data, "--out", tmp_path / "index", "--weights", "ducn-light", "--device", "cpu"],
        ["similar", ct, "--index", tmp_path / "index", "--k", "1", "--out", tmp_path / "similar.json",
         "--weights", "ducn-light", "--device", "cpu"],
    ]
    for step in steps:
        assert cli.main([str(part) for part in step]) == 0, capsys.readouterr().err
    assert no_network == []
    assert len(json.loads((tmp_path / "similar.json").read_text())["results"]) == 1


def test_the_block_catches_a_connection(no_network):
    """The fixture must really stop a connection, or the test above proves nothing."""
    with pytest.raises(OSError, match="network blocked"):
        socket.create_connection(("example.org", 80), timeout=1)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, pytest.raises(OSError, match="network blocked"):
        sock.connect(("127.0.0.1", 9))
    assert [what for what, _ in no_network] == ["create_connection", "socket.connect"]
