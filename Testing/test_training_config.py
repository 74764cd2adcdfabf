"""Training configs: every paper and demo config loads, mistakes are named, unshipped tasks say so."""

from __future__ import annotations

import pytest

from covidweak.errors import InputError
from covidweak.training.config import CONFIG_DIR, build_config, parse_overrides
from covidweak.training.tasks import TASKS, get_task, is_available


@pytest.fixture(scope="module")
def task():
    return get_task("cxr-lungs")


def test_defaults_file_and_overrides_layer_in_order(task):
    config = build_config(task, "cxr-lungs.demo", ["optim.lr=0.01", "amp=bf16", "model.channels=[4, 8]"])
    assert config["task"] == "cxr-lungs" and config["optim"]["lr"] == 0.01 and config["amp"] == "bf16"
    assert config["model"]["channels"] == [4, 8] and config["preprocess"]["size"] == 64
    assert config["optim"]["name"] == "adam" and config["schedule"]["name"] == "constant"


def test_integers_are_accepted_for_floats(task):
    assert build_config(task, None, ["optim.lr=1"])["optim"]["lr"] == 1.0


@pytest.mark.parametrize("override, named", [
    ("optim.lrate=0.1", "optim.lrate"),
    ("epochs=ten", "epochs"),
    ("epochs=true", "epochs"),
    ("optim.name=rmsprop", "optim.name"),
    ("amp=fp16", "amp"),
    ("accumulate=0", "accumulate"),
    ("params.unknown=1", "params.unknown"),
    ("preprocess.size=big", "preprocess.size"),
    ("optim=0.1", "optim"),
    ("early_stopping.patience=two", "early_stopping.patience"),
    ("optim.clip_norm=0", "optim.clip_norm"),
    ("optim.clip_norm=big", "optim.clip_norm"),
])
def test_a_wrong_key_or_value_is_named(task, override, named):
    with pytest.raises(InputError, match=f"'{named}'"):
        build_config(task, None, [override])


def test_freeze_bn_takes_a_bool_or_stats_and_nothing_else():
    mseamnam = get_task("mseamnam")
    assert build_config(mseamnam, None, ["model.freeze_bn=stats"])["model"]["freeze_bn"] == "stats"
    assert build_config(mseamnam, None, ["model.freeze_bn=true"])["model"]["freeze_bn"] is True
    with pytest.raises(InputError, match="'model.freeze_bn' is 'maybe'"):
        build_config(mseamnam, None, ["model.freeze_bn=maybe"])


def test_pcm_power_and_epoch_samples_are_checked_before_training():
    mseamnam = get_task("mseamnam")
    config = build_config(mseamnam, None, ["model.pcm_power=16", "params.epoch_samples=80"])
    assert config["model"]["pcm_power"] == 16.0 and config["params"]["epoch_samples"] == 80
    assert build_config(mseamnam, None, [])["params"]["epoch_samples"] is None
    with pytest.raises(InputError, match="'model.pcm_power' must be above 0"):
        build_config(mseamnam, None, ["model.pcm_power=0"])
    with pytest.raises(InputError, match="'params.epoch_samples' must be at least 1"):
        build_config(mseamnam, None, ["params.epoch_samples=0"])
    with pytest.raises(InputError, match="'model.pcm_power'"):
        build_config(get_task("cam-pretrain"), None, ["model.pcm_power=4"])  # a CAM has no PCM


def test_equivariance_maps_are_checked_before_training():
    seam = get_task("seam")
    assert build_config(seam, None, [])["params"]["equivariance"] == "normalised"
    with pytest.raises(InputError, match="'params.equivariance' is 'softmax'"):
        build_config(seam, None, ["params.equivariance=softmax"])


def test_malformed_set_and_bad_fractions_are_refused(task):
    with pytest.raises(InputError, match="key=value"):
        parse_overrides(["optim.lr"])
    with pytest.raises(InputError, match="data.fractions"):
        build_config(task, None, ["data.fractions=[0.5, 0.5, 0.5]"])


def test_unknown_key_in_a_file_names_file_and_key(task, tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("task: cxr-lungs\nschedule: {name: linear, gama: 0.1}\n")
    with pytest.raises(InputError, match=r"typo.yaml.*'schedule.gama'"):
        build_config(task, path)
    path.write_text("task: seam\n")
    with pytest.raises(InputError, match="for task 'seam'"):
        build_config(task, path)


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_config_loads_or_says_its_task_is_not_available(path):
    import yaml

    name = yaml.safe_load(path.read_text())["task"]
    assert name in TASKS and path.stem.split(".")[0] == name
    if is_available(name):
        assert build_config(get_task(name), path)["task"] == name
    else:
        with pytest.raises(InputError, match="not available yet"):
            get_task(name)


def test_every_task_has_a_paper_and_a_demo_config():
    names = {p.name for p in CONFIG_DIR.glob("*.yaml")}
    assert {f"{t}.yaml" for t in TASKS} | {f"{t}.demo.yaml" for t in TASKS} <= names


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(InputError, match="cxr-lungs"):
        get_task("resnet")
