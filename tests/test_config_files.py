"""Config files with bases: the chain they stand for, the errors, and the shipped configs."""

from pathlib import Path

import pytest
import yaml

from mono.cli import main
from mono.config_files import ConfigFileError, config_chain, expand_config_args, load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _write(path: Path, content: dict) -> Path:
    path.write_text(yaml.safe_dump(content))
    return path


def test_a_base_chain_merges_mappings_and_replaces_lists(tmp_path):
    _write(tmp_path / "base.yaml", {"trainer": {"a": 1, "b": 2, "callbacks": [1, 2]}})
    _write(tmp_path / "mid.yaml", {"base": "base.yaml", "trainer": {"b": 3}})
    leaf_settings = {"trainer": {"callbacks": [9]}, "model": {"lr": 0.5}}
    leaf = _write(tmp_path / "leaf.yaml", {"base": ["mid.yaml"], **leaf_settings})
    chain = [str(tmp_path / "base.yaml"), {"trainer": {"b": 3}}, leaf_settings]
    assert config_chain(leaf) == chain
    assert load_config(leaf) == {
        "trainer": {"a": 1, "b": 3, "callbacks": [9]},
        "model": {"lr": 0.5},
    }
    # On the command line: the base's path, then the files' settings as YAML text, in order.
    args = expand_config_args(["fit", f"--config={leaf}", "--model.lr", "1"])
    assert args[0] == "fit" and args[-2:] == ["--model.lr", "1"]
    assert args[1:7:2] == ["--config"] * 3
    assert args[2] == chain[0]
    assert [yaml.safe_load(text) for text in args[4:7:2]] == chain[1:]


def test_a_config_without_base_passes_through_unchanged(tmp_path):
    plain = _write(tmp_path / "plain.yaml", {"model": {"lr": 1.0}})
    assert expand_config_args(["fit", "--config", str(plain)]) == ["fit", "--config", str(plain)]
    assert expand_config_args(["fit", "--config", "missing.yaml"])[-1] == "missing.yaml"


def test_missing_base_and_cycles_are_one_line_errors(tmp_path, capsys):
    a = _write(tmp_path / "a.yaml", {"base": "b.yaml"})
    with pytest.raises(
        ConfigFileError, match=rf"^{a}: its base {tmp_path / 'b.yaml'} does not exist$"
    ):
        config_chain(a)
    _write(tmp_path / "b.yaml", {"base": "a.yaml"})
    with pytest.raises(
        ConfigFileError, match=r"its bases form a cycle \(.*a.yaml -> .*b.yaml -> .*a.yaml\)"
    ):
        config_chain(a)
    bad = _write(tmp_path / "bad.yaml", {"base": {"x": 1}})
    with pytest.raises(ConfigFileError, match="'base' must be a file name or a list of them"):
        config_chain(bad)
    with pytest.raises(SystemExit, match=r"^mono fit: error: .*its bases form a cycle"):
        main(["fit", "--config", str(a)])


def _printed(capsys, *configs: str) -> dict:
    args = ["fit"]
    for name in configs:
        args += ["--config", str(CONFIGS / name)]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--print_config"])
    assert exit_info.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


# Monodepth2's three KITTI models: frames, split and how the metrics are scaled.
KITTI = {
    "kitti_mono.yaml": (["0", "-1", "1"], "eigen_zhou", "median"),
    "kitti_stereo.yaml": (["0", "s"], "eigen_full", "stereo"),
    "kitti_mono_stereo.yaml": (["0", "-1", "1", "s"], "eigen_zhou", "stereo"),
}


def test_kitti_configs_carry_monodepth2s_settings_and_share_the_rest(capsys):
    printed = {name: _printed(capsys, name) for name in KITTI}
    for name, (frame_ids, split, scaling) in KITTI.items():
        cfg = printed[name]
        assert cfg["data"]["frame_ids"] == frame_ids and cfg["data"]["split"] == split
        assert cfg["model"]["eval_scaling"] == scaling
        assert (cfg["data"]["height"], cfg["data"]["width"], cfg["data"]["batch_size"]) == (
            192, 640, 12,
        )  # fmt: skip
        assert cfg["model"]["lr"] == 1e-4 and cfg["model"]["scheduler_step_size"] == 15
        assert cfg["model"]["pretrained"] is True and cfg["model"]["num_layers"] == 18
        assert cfg["trainer"]["max_epochs"] == 20
        assert cfg["trainer"]["default_root_dir"] == f"runs/{name[:-5]}"
    # Apart from the run folder, the three trainers are one (written once, in base.yaml).
    trainers = [
        {**c["trainer"], "default_root_dir": None, "logger": None} for c in printed.values()
    ]
    assert trainers[0] == trainers[1] == trainers[2]
    callbacks = [c["class_path"].rsplit(".", 1)[1] for c in trainers[0]["callbacks"]]
    assert callbacks == [
        "ModelCheckpoint", "LastCheckpoint", "LearningRateMonitor", "Throughput", "ImageLogger",
    ]  # fmt: skip


def test_a_delta_works_alone_and_after_its_base(capsys):
    alone = _printed(capsys, "synthetic_mono_stereo.yaml")
    after = _printed(capsys, "synthetic.yaml", "synthetic_mono_stereo.yaml")
    assert alone == after
    assert alone["data"]["frame_ids"] == ["0", "-1", "1", "s"]
    assert alone["trainer"]["default_root_dir"] == "runs/synthetic_mono_stereo"
    assert alone["trainer"]["accelerator"] == "cpu"  # synthetic.yaml's, through the base
