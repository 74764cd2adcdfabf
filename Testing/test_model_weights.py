"""Weight files: one factory for training and inference, checked loading, clear errors."""

from __future__ import annotations

import json

import pytest
import torch

from covidweak.errors import ModelError
from covidweak.models import METHODS, build_model, lesion_logits, load_weights, save_weights
from covidweak.models.weights import REGISTRY_NAME

PREPROCESS = {"input_size": 64, "hu_window": [-1200, 600]}


@pytest.mark.parametrize("method", METHODS)
def test_every_method_builds_and_gives_one_lesion_map(method):
    model = build_model(method, {"backbone": "light"}).eval()
    with torch.no_grad():
        logits = lesion_logits(model, torch.zeros(2, 3, 64, 64))
    assert logits.shape[:2] == (2, 1)
    assert 64 % logits.shape[-1] == 0


def test_saved_weights_reload_into_the_same_network(tmp_path):
    model = build_model("cam").eval()
    digest = save_weights(tmp_path / "cam.pt", model, "cam", {"backbone": "light"}, PREPROCESS, {"epochs": 1})
    loaded = load_weights(tmp_path / "cam.pt", method="cam")
    assert loaded.sha256 == digest and loaded.preprocess == PREPROCESS and loaded.info == {"epochs": 1}
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(lesion_logits(model, x), lesion_logits(loaded.model, x))


def test_registry_name_checks_sha256(tmp_path):
    digest = save_weights(tmp_path / "seam.pt", build_model("seam"), "seam", {"backbone": "light"}, PREPROCESS)
    entry = {"name": "seam-light", "file": "seam.pt", "sha256": digest, "method": "seam"}
    (tmp_path / REGISTRY_NAME).write_text(json.dumps({"format_version": 1, "models": [entry]}))
    assert load_weights("seam-light", folder=tmp_path).method == "seam"
    with open(tmp_path / "seam.pt", "ab") as stream:
        stream.write(b"tampered")
    with pytest.raises(ModelError, match="damaged"):
        load_weights("seam-light", folder=tmp_path)
    with pytest.raises(ModelError, match="no model named 'other'.*known: seam-light"):
        load_weights("other", folder=tmp_path)


def test_bad_weight_files_get_one_line_errors(tmp_path):
    with pytest.raises(ModelError, match="not found.*covidweak train"):
        load_weights(tmp_path / "missing.pt")
    (tmp_path / "garbage.pt").write_bytes(b"\x00not a checkpoint")
    with pytest.raises(ModelError, match="corrupt"):
        load_weights(tmp_path / "garbage.pt")
    torch.save({"weights": 1}, tmp_path / "foreign.pt")
    with pytest.raises(ModelError, match="not a covidweak weight file"):
        load_weights(tmp_path / "foreign.pt")
    save_weights(tmp_path / "unet.pt", build_model("unet"), "unet", {"backbone": "light"}, PREPROCESS)
    with pytest.raises(ModelError, match="'unet' weights, not 'mseamnam'"):
        load_weights(tmp_path / "unet.pt", method="mseamnam")


def test_a_folder_without_a_registry_says_where_the_shipped_weights_are(tmp_path):
    from covidweak.models.weights import MODELS_ENV, registry_entry

    with pytest.raises(ModelError, match=f"no shipped weights here .*set {MODELS_ENV} to the repository's Resources/Models"):
        registry_entry("mseamnam-light", tmp_path)
