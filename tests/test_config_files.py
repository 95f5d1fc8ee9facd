"""Config files: presets as TOML, --config, --set, unknown keys and bad values, round trips."""

import json

import pytest
from typer.testing import CliRunner

from tbx_train.cli import app
from tbx_train.config import ConfigError
from tbx_train.config_files import (
    config_dict,
    parse_set,
    preset_names,
    resolve_config,
    run_preset,
    to_toml,
    write_resolved,
)


def test_presets_are_package_files_and_all_resolve():
    assert {"tiny", "tbx11k", "tbx11k-1gpu", "tbx11k-2gpu", "tbx11k-user-best"} <= set(
        preset_names()
    )
    for name in preset_names():
        assert run_preset(name).preset == name


def test_layers_apply_in_order(tmp_path):
    config_file = tmp_path / "my.toml"
    config_file.write_text(
        'base = "tiny"\n[train]\nepochs = 7\nlr = 3e-4\n[model]\ndropout = 0.2\n'
    )
    config = resolve_config(
        None, config_file, {"train.epochs": 9}, ["lr=5e-4", "data.train_sizes=96,128"]
    )
    assert config.preset == "tiny" and config.model.backbone == "resnet18"  # from the base
    assert config.train.epochs == 9  # option over file
    assert config.train.lr == 5e-4  # --set over file
    assert config.model.dropout == 0.2
    assert config.data.train_sizes == (96, 128)


def test_unknown_key_lists_close_matches():
    with pytest.raises(ConfigError, match=r"unknown config key 'train.lr_dorp'; did you mean "):
        resolve_config("tiny", sets=["train.lr_dorp=3"])
    with pytest.raises(ConfigError, match="num_queries"):
        resolve_config("tiny", sets=["num_querys=300"])


def test_unknown_key_in_a_file_names_the_file(tmp_path):
    config_file = tmp_path / "bad.toml"
    config_file.write_text("[train]\nepoch = 3\n")
    with pytest.raises(ConfigError, match=r"--config .*bad.toml: unknown config key 'train.epoch'"):
        resolve_config(None, config_file)


def test_bad_values_name_the_type_or_the_choices():
    with pytest.raises(ConfigError, match=r"train\.epochs expects an integer, got 'x'"):
        resolve_config("tiny", sets=["epochs=x"])
    with pytest.raises(ConfigError, match=r"choose one of \['off', 'auto', 'bf16', 'fp16'\]"):
        resolve_config("tiny", sets=["amp=fp8"])
    with pytest.raises(ConfigError, match="expects true or false"):
        resolve_config("tiny", sets=["ema=1"])
    with pytest.raises(ConfigError, match="unknown run preset 'nope'"):
        resolve_config("nope")
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_set("epochs")


def test_optional_fields_take_none():
    assert resolve_config("tiny", sets=["max_steps=5"]).train.max_steps == 5
    assert resolve_config("tbx11k-1gpu", sets=["world_size=none"]).train.world_size is None


def test_resolved_toml_reads_back_to_the_same_config(tmp_path):
    config = resolve_config("tbx11k-user-best", sets=["max_steps=3", "lr_drop_epochs=[30,40]"])
    paths = write_resolved(config, tmp_path)
    assert [p.name for p in paths] == ["config.toml", "config_resolved.json"]
    assert resolve_config(None, paths[0]) == config
    assert json.loads(paths[1].read_text()) == config_dict(config)


def test_config_show_prints_the_resolved_config():
    runner = CliRunner()
    result = runner.invoke(
        app, ["config", "show", "--preset", "tbx11k-user-best", "--set", "epochs=60"]
    )
    assert result.exit_code == 0, result.output
    assert result.output == to_toml(resolve_config("tbx11k-user-best", sets=["epochs=60"]))
    assert "epochs = 60" in result.output and "num_queries = 300" in result.output
    bad = runner.invoke(app, ["config", "show", "--set", "train.nope=1"])
    assert bad.exit_code == 2 and "unknown config key 'train.nope'" in bad.output


def test_model_knobs_reach_the_model_loss_and_matcher():
    from torch import nn

    from tbx_train.model import build_dino

    config = resolve_config("tiny", sets=[
        "model.focal_alpha=0.75", "model.dropout=0.1", "model.num_queries=60",
        "model.dn_box_noise_scale=0.4", "model.dn_label_noise_ratio=0.3",
    ]).model  # fmt: skip
    model, criterion, _ = build_dino(config)
    assert criterion.focal_alpha == criterion.matcher.focal_alpha == 0.75
    dropouts = [m.p for m in model.modules() if isinstance(m, nn.Dropout)]
    assert dropouts and set(dropouts) == {0.1}
    assert model.transformer.tgt_embed.weight.shape[0] == 60
    assert (model.config.dn_box_noise_scale, model.config.dn_label_noise_ratio) == (0.4, 0.3)
