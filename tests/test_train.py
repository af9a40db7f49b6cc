import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import train
from conftest import ROOT, TINY_ARGS
from training import StopOnNonFinite, TrainingCheckpoint


def test_precedence_preset_then_file_then_flags(tmp_path):
    assert train.resolve_config([]).image_size == 32  # the default is the quick preset
    smoke = train.resolve_config(["--preset", "smoke"])
    assert smoke.image_size == 16 and smoke.epochs == 2
    settings = tmp_path / "c.json"
    settings.write_text(json.dumps({"epochs": 7, "batch_size": 4, "mixed_precision": True,
                                    "sample_prompts": ["红色 T恤", "shoe"]}))
    config = train.resolve_config(["--preset", "smoke", "--config", str(settings),
                                   "--batch-size", "6", "--no-mixed-precision"])
    assert (config.image_size, config.epochs, config.batch_size) == (16, 7, 6)
    assert config.mixed_precision is False and config.sample_prompts == ("红色 T恤", "shoe")
    assert train.resolve_config(["--caption-columns", "a,b"]).caption_columns == ("a", "b")


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
        train.resolve_config(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_bad_config_file_values_are_errors(tmp_path, capsys):
    for content, message in [({"epoch": 3}, "unknown setting(s) epoch"),
                             ({"epochs": "3"}, "epochs: expected an integer"),
                             ({"mixed_precision": "False"}, "expected true or false"),
                             (["epochs", 3], "expected a JSON object")]:
        path = tmp_path / "c.json"
        path.write_text(json.dumps(content))
        with pytest.raises(SystemExit):
            train.resolve_config(["--config", str(path)])
        assert message in capsys.readouterr().err


def test_smoke_run_writes_the_run_folder(trained_run):
    names = set(os.listdir(trained_run))
    assert {"config.json", "data_report.json", "vocabulary.txt", "checkpoints", "logs",
            "samples", "final"} <= names
    config = json.load(open(os.path.join(trained_run, "config.json")))
    assert config["image_size"] == 16 and config["epochs"] == 2
    assert sorted(os.listdir(os.path.join(trained_run, "samples"))) == [
        "epoch_0001.png", "epoch_0002.png", "prompts.json"]
    assert os.path.exists(os.path.join(trained_run, "final", "model.keras"))
    assert json.load(open(os.path.join(trained_run, "data_report.json")))["usable"] == 16
    calibration = json.load(open(os.path.join(trained_run, "final", "calibration.json")))
    assert calibration["split"] == "train" and calibration["pairs"] > 16
    with np.load(os.path.join(trained_run, "checkpoints", "state.npz")) as state:
        assert int(state["epoch"]) == 2


def test_other_settings_in_the_same_run_folder_are_refused(trained_run):
    manifest = json.load(open(os.path.join(trained_run, "config.json")))["manifest"]
    with pytest.raises(SystemExit, match="holds a run with other settings"):
        train.main(TINY_ARGS + ["--manifest", manifest, "--out-dir", trained_run,
                                "--seed", "9"])


def test_a_run_made_before_a_setting_existed_resumes_as_it_was_trained(tmp_path):
    config = train.resolve_config(TINY_ARGS + ["--out-dir", str(tmp_path)])
    saved = dataclasses.asdict(config)
    del saved["color_augment"], saved["color_subgroups"]  # an older run's config.json
    (tmp_path / "config.json").write_text(json.dumps(saved))
    train.check_resumable(dataclasses.replace(config, color_augment=0), str(tmp_path))
    with pytest.raises(SystemExit, match="other settings \\(color_augment\\)"):
        train.check_resumable(dataclasses.replace(config, color_augment=1), str(tmp_path))


def test_manifest_problems_stop_with_a_clear_message(tmp_path):
    with pytest.raises(SystemExit, match="manifest not found"):
        train.main(TINY_ARGS + ["--manifest", str(tmp_path / "none.csv"),
                                "--out-dir", str(tmp_path / "run")])


def test_colour_augmentation_without_recolourable_rows_is_a_note(tmp_path, tiny_manifest,
                                                                 capsys):
    run = train.main(TINY_ARGS + ["--manifest", tiny_manifest, "--out-dir", str(tmp_path / "r"),
                                  "--color-augment", "1", "--color-subgroups", "hats"])
    assert "colour augmentation has nothing to recolour" in capsys.readouterr().out
    assert os.path.exists(os.path.join(run, "final", "model.keras"))


def test_fewer_rows_than_a_batch_is_a_clear_error(tmp_path, tiny_manifest):
    with pytest.raises(SystemExit, match="12 usable rows is fewer than one batch"):
        train.main(TINY_ARGS + ["--manifest", tiny_manifest, "--out-dir", str(tmp_path / "r"),
                                "--steps-per-epoch", "0", "--batch-size", "32"])


def test_non_finite_loss_stops_without_overwriting_the_checkpoint(tmp_path):
    class FakeModel:
        stop_training = False

    guard = StopOnNonFinite()
    checkpoint = TrainingCheckpoint(str(tmp_path), guard)
    guard.set_model(FakeModel())
    guard.on_epoch_begin(4)
    guard.on_train_batch_end(0, {"d_loss": 1.0, "g_loss": 0.5})
    assert guard.error is None
    guard.on_train_batch_end(1, {"d_loss": float("nan"), "g_loss": 0.5})
    assert guard.model.stop_training and "non-finite d_loss at epoch 5, batch 2" in guard.error
    checkpoint.on_epoch_end(4)  # would crash on FakeModel if it tried to save
    assert not os.listdir(tmp_path)


def test_non_finite_loss_exits_and_keeps_the_last_good_checkpoint(tmp_path, tiny_manifest,
                                                                monkeypatch):
    import model

    args = TINY_ARGS + ["--manifest", tiny_manifest, "--out-dir", str(tmp_path / "run"),
                        "--epochs", "1"]
    run = train.main(args)
    state = os.path.join(run, "checkpoints", "state.npz")
    good = open(state, "rb").read()
    monkeypatch.setattr(model, "generator_hinge_loss", lambda logits: logits[0, 0] * np.nan)
    with pytest.raises(SystemExit, match=r"non-finite g_loss at epoch 2, batch 1.*last good"):
        train.main(args[:-1] + ["2"])
    assert open(state, "rb").read() == good


def run_train(args, env=None):
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py")] + args,
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


@pytest.mark.slow
def test_resume_after_sigkill_continues_from_the_last_checkpoint(tmp_path, tiny_manifest):
    run = str(tmp_path / "run")
    args = TINY_ARGS + ["--manifest", tiny_manifest, "--out-dir", run, "--epochs", "40",
                        "--verbose", "2"]
    state = os.path.join(run, "checkpoints", "state.npz")
    process = run_train(args)
    deadline = time.time() + 240
    while not os.path.exists(state) and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)  # well inside a later epoch
    process.send_signal(signal.SIGKILL)
    process.wait()
    with np.load(state) as saved:
        done = int(saved["epoch"])
    assert 1 <= done < 40

    resumed = run_train(args[:-4] + ["--epochs", str(done + 1), "--verbose", "2"])
    output = resumed.communicate(timeout=240)[0]
    assert resumed.returncode == 0, output
    assert f"resuming {run} after epoch {done}" in output
    assert f"Epoch {done + 1}/{done + 1}" in output and "Epoch 1/" not in output
    with np.load(state) as saved:
        assert int(saved["epoch"]) == done + 1


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(tmp_path, tiny_manifest):
    script = (
        "import sys, tensorflow as tf\n"
        "cpu = tf.config.list_physical_devices('CPU')[0]\n"
        "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)\n"
        "import train\n"
        "train.main(sys.argv[1:])\n")
    args = TINY_ARGS + ["--manifest", tiny_manifest, "--out-dir", str(tmp_path / "run"),
                        "--strategy", "mirrored", "--epochs", "1"]
    result = subprocess.run([sys.executable, "-c", script] + args, cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "2 replica(s)" in result.stdout


def test_mixed_precision_smoke_run(tmp_path, tiny_manifest):
    run = train.main(TINY_ARGS + ["--manifest", tiny_manifest, "--out-dir", str(tmp_path / "r"),
                                  "--mixed-precision", "--epochs", "1"])
    config = json.load(open(os.path.join(run, "config.json")))
    assert config["mixed_precision"] is True
    assert os.path.exists(os.path.join(run, "final", "model.keras"))
