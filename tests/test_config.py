import dataclasses
import json

import pytest

from adgan.training import config


def test_precedence_preset_then_file_then_flags(tmp_path):
    assert config.resolve_config([]).image_size == 32  # the default is the quick preset
    smoke = config.resolve_config(["--preset", "smoke"])
    assert smoke.image_size == 16 and smoke.epochs == 2
    settings = tmp_path / "c.json"
    settings.write_text(json.dumps({"epochs": 7, "batch_size": 4, "mixed_precision": True,
                                    "sample_prompts": ["红色 T恤", "shoe"]}))
    resolved = config.resolve_config(["--preset", "smoke", "--config", str(settings),
                                   "--batch-size", "6", "--no-mixed-precision"])
    assert (resolved.image_size, resolved.epochs, resolved.batch_size) == (16, 7, 6)
    assert resolved.mixed_precision is False and resolved.sample_prompts == ("红色 T恤", "shoe")
    assert config.resolve_config(["--caption-columns", "a,b"]).caption_columns == ("a", "b")


@pytest.mark.parametrize("argv, message", [
    (["--epoch", "3"], "unrecognized arguments"),
    (["--epochs", "three"], "invalid int value"),
    (["--image-size", "48"], "power of two"),
    (["--image-size", "4"], "power of two"),
    (["--strategy", "tpu"], "strategy must be one of"),
    (["--batch-size", "0"], "batch_size must be positive"),
    (["--color-augment", "-1"], "color_augment must be 0 or more"),
])
def test_bad_flags_are_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        config.resolve_config(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_bad_config_file_values_are_errors(tmp_path, capsys):
    for content, message in [({"epoch": 3}, "unknown setting(s) epoch"),
                             ({"epochs": "3"}, "epochs: expected an integer"),
                             ({"mixed_precision": "False"}, "expected true or false"),
                             (["epochs", 3], "expected a JSON object")]:
        path = tmp_path / "c.json"
        path.write_text(json.dumps(content))
        with pytest.raises(SystemExit):
            config.resolve_config(["--config", str(path)])
        assert message in capsys.readouterr().err


def test_changed_settings_ignore_epochs_and_verbosity():
    base = config.resolve_config(["--preset", "smoke"])
    assert config.changed_settings(base, dataclasses.replace(base, epochs=9, verbose=0)) == []
    assert config.changed_settings(base, dataclasses.replace(base, seed=3, image_size=32)) == [
        "image_size", "seed"]


def test_settings_coerce_from_json_types():
    settings = config.coerce_settings({"groups": ["Objects"], "epochs": 3, "g_learning_rate": 1})
    assert settings == {"groups": ("Objects",), "epochs": 3, "g_learning_rate": 1.0}
    assert isinstance(settings["g_learning_rate"], float)
    with pytest.raises(ValueError, match="epochs: expected an integer, got True"):
        config.coerce_settings({"epochs": True})


def test_every_preset_is_valid_and_the_shipped_one_covers_the_panels_groups():
    for name in config.PRESETS:
        assert config.config_errors(config.resolve_config(["--preset", name])) == []
    shipped = config.resolve_config(["--preset", "shipped"])
    assert shipped.image_size == 64 and shipped.out_dir == "runs/shipped"
    # the panel's watch, teddy bear and bicycle lie in Travel & Places and Activities
    assert {"Food & Drink", "Objects", "Activities", "Travel & Places"} == set(shipped.groups)
