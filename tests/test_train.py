import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from adgan import quiet
from adgan.runs.artifacts import load_model, load_style_words, load_text_encoder, load_vocabulary
from adgan.runs.layout import load_config, run_path
from adgan.text.encoder import load_encoder
from adgan.training import distribute
from adgan.training.config import resolve_config
from conftest import ROOT, RUN_ARGS, TINY_ARGS, TRACED_ARGS, copy_run, shipped_rows, write_manifest
import model
import train


def test_smoke_run_writes_the_run_folder(trained_run):
    names = set(os.listdir(trained_run))
    assert {"config.json", "data_report.json", "vocabulary.txt", "checkpoints", "logs",
            "samples", "final", "style_words.json"} <= names
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


def test_the_run_learns_the_style_words_of_its_manifest(trained_run):
    words = load_style_words(trained_run)
    assert words["fluent-3d"] == ("3d", "立体") and len(words) == 8
    vocabulary = open(os.path.join(trained_run, "vocabulary.txt"), encoding="utf-8").read().split()
    assert {"3d", "立", "体", "flat", "扁", "平"} <= set(vocabulary)


def test_other_settings_in_the_same_run_folder_are_refused(trained_run):
    manifest = load_config(trained_run).manifest
    with pytest.raises(SystemExit, match="holds a run with other settings \\(seed\\)"):
        train.main(RUN_ARGS + ["--manifest", manifest, "--out-dir", trained_run,
                               "--seed", "9"])


def test_a_run_made_before_a_setting_existed_resumes_as_it_was_trained(tmp_path):
    config = resolve_config(TINY_ARGS + ["--out-dir", str(tmp_path)])
    saved = dataclasses.asdict(config)
    del saved["color_augment"], saved["color_subgroups"]  # an older run's config.json
    (tmp_path / "config.json").write_text(json.dumps(saved))
    train.check_resumable(dataclasses.replace(config, color_augment=0), str(tmp_path))
    with pytest.raises(SystemExit, match="other settings \\(color_augment\\)"):
        train.check_resumable(dataclasses.replace(config, color_augment=1), str(tmp_path))


def test_a_damaged_config_in_the_run_folder_is_a_clear_error(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(SystemExit, match="config.json: cannot read the run's settings"):
        train.check_resumable(resolve_config(TINY_ARGS), str(tmp_path))


def test_manifest_problems_stop_with_a_clear_message(tmp_path):
    with pytest.raises(SystemExit, match="manifest not found"):
        train.main(TINY_ARGS + ["--manifest", str(tmp_path / "none.csv"),
                                "--out-dir", str(tmp_path / "run")])


# Two logical CPU devices must be set before TensorFlow starts: a fresh process.
TWO_CPUS = (
    "import sys, tensorflow as tf\n"
    "cpu = tf.config.list_physical_devices('CPU')[0]\n"
    "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)\n"
    "import train\n"
    "train.main(sys.argv[1:])\n")


@pytest.fixture(scope="session")  # session: made once, whatever runs between
def mirrored_mixed_run(tmp_path_factory):
    """(run folder, what it printed): one epoch of the traced step on two logical CPUs
    (MirroredStrategy) in mixed precision, with colour augmentation of a subgroup no row is
    in, in a fresh process; trained once for the three tests that read it."""
    folder = tmp_path_factory.mktemp("mixed")
    manifest = write_manifest(str(folder / "data"), shipped_rows(12))
    args = TRACED_ARGS + ["--manifest", manifest, "--out-dir", str(folder / "r"),
                          "--strategy", "mirrored", "--mixed-precision", "--epochs", "1",
                          "--color-augment", "1", "--color-subgroups", "hats"]
    result = subprocess.run([sys.executable, "-c", TWO_CPUS] + args, cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    return str(folder / "r"), result.stdout


@pytest.mark.slow
def test_colour_augmentation_without_recolourable_rows_is_a_note(mirrored_mixed_run):
    run, printed = mirrored_mixed_run
    assert "colour augmentation has nothing to recolour" in printed
    assert os.path.exists(os.path.join(run, "final", "model.keras"))


def test_fewer_rows_than_a_batch_is_a_clear_error(tmp_path, tiny_manifest):
    with pytest.raises(SystemExit, match="12 usable rows is fewer than one batch"):
        train.main(TINY_ARGS + ["--manifest", tiny_manifest, "--out-dir", str(tmp_path / "r"),
                                "--steps-per-epoch", "0", "--batch-size", "32"])


def test_non_finite_loss_exits_and_keeps_the_last_good_checkpoint(trained_run, tmp_path,
                                                                monkeypatch):
    run = copy_run(trained_run, tmp_path)  # two good epochs
    state = os.path.join(run, "checkpoints", "state.npz")
    good = open(state, "rb").read()
    monkeypatch.setattr(model, "generator_hinge_loss", lambda logits: logits[0, 0] * np.nan)
    with pytest.raises(SystemExit, match=r"non-finite g_loss at epoch 3, batch 1.*last good"):
        train.main(RUN_ARGS + ["--manifest", load_config(run).manifest, "--out-dir", run,
                               "--epochs", "3"])
    assert open(state, "rb").read() == good


def run_train(args, env=None):
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py")] + args,
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(mirrored_mixed_run):
    _, printed = mirrored_mixed_run
    assert "2 replica(s)" in printed


@pytest.mark.slow
def test_mixed_precision_smoke_run(mirrored_mixed_run):
    run, _ = mirrored_mixed_run
    config = json.load(open(os.path.join(run, "config.json")))
    assert config["mixed_precision"] is True
    assert os.path.exists(os.path.join(run, "final", "model.keras"))


def test_gan_starts_from_a_pretrained_frozen_text_encoder(tiny_encoder, tiny_manifest, tmp_path):
    run = train.main(TINY_ARGS + ["--manifest", tiny_manifest, "--out-dir", str(tmp_path / "r"),
                                  "--text-encoder", tiny_encoder, "--freeze-text-encoder"])
    gan, pretrained = load_model(run), load_encoder(tiny_encoder)
    assert gan.vocabulary == pretrained.vocabulary
    for ours, theirs in zip(gan.text_encoder.get_weights(), pretrained.text_encoder.get_weights()):
        np.testing.assert_array_equal(ours, theirs)  # frozen: unchanged by training
    with pytest.raises(SystemExit, match="other sizes: embedding_dim 16 \\(run: 32\\)"):
        train.main(TINY_ARGS + ["--manifest", tiny_manifest, "--out-dir", str(tmp_path / "m"),
                                "--text-encoder", tiny_encoder, "--embedding-dim", "32"])


def test_a_text_encoder_can_come_from_a_trained_run(trained_run, tmp_path):
    config = dataclasses.replace(load_config(trained_run), text_encoder=trained_run,
                                 out_dir=str(tmp_path / "r"))
    pretrained = train.load_pretrained_text_encoder(config, config.out_dir)
    assert pretrained.vocabulary == load_vocabulary(trained_run)
    for ours, theirs in zip(pretrained.text_encoder.get_weights(),
                            load_model(trained_run).text_encoder.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    with pytest.raises(SystemExit, match="other sizes: embedding_dim 16 \\(run: 32\\)"):
        train.load_pretrained_text_encoder(dataclasses.replace(config, embedding_dim=32),
                                           config.out_dir)


def test_auto_starts_from_the_shipped_text_encoder_only_when_it_is_the_one_auto_trains(
        release, tmp_path, monkeypatch, capsys):
    release = shutil.copytree(release, str(tmp_path / "models" / "adgan"))  # settings change
    settings = json.load(open(os.path.join(release, "config.json")))
    settings.update(text_encoder="auto", freeze_text_encoder=True)
    json.dump(settings, open(os.path.join(release, "config.json"), "w"))
    monkeypatch.setattr("adgan.runs.layout.SHIPPED_RUN", release)
    # another run of the same encoder settings: other groups, image size and folder
    config = dataclasses.replace(load_config(release), groups=("Objects",), image_size=32,
                                 out_dir=str(tmp_path / "mine"))
    assert train.shipped_text_encoder_fits(config)
    pretrained = train.load_pretrained_text_encoder(config, config.out_dir)
    assert pretrained.vocabulary == load_vocabulary(release)
    assert "starting from the shipped model's text encoder" in capsys.readouterr().out
    assert not os.path.exists(run_path(config.out_dir, "text_encoder"))  # none trained
    for other in (dict(text_encoder_epochs=99), dict(seed=1), dict(split="")):
        assert not train.shipped_text_encoder_fits(dataclasses.replace(config, **other))
    settings["freeze_text_encoder"] = False  # fine-tuned by the GAN: not the dual encoder's
    json.dump(settings, open(os.path.join(release, "config.json"), "w"))
    assert not train.shipped_text_encoder_fits(config)
    monkeypatch.setattr("adgan.runs.layout.SHIPPED_RUN", str(tmp_path / "none"))
    assert not train.shipped_text_encoder_fits(config)


@pytest.mark.parametrize("preset", ["quick", "shipped", "instance"])
def test_the_shipped_release_spares_its_presets_the_text_encoders_25_minutes(preset):
    # a release fine-tuned from an earlier one keeps `auto`'s frozen encoder and says so
    assert train.shipped_text_encoder_fits(resolve_config(["--preset", preset]))


def test_auto_text_encoder_is_trained_once_per_run(tiny_manifest, tmp_path):
    args = TINY_ARGS + ["--manifest", tiny_manifest, "--out-dir", str(tmp_path / "r"),
                        "--text-encoder", "auto", "--freeze-text-encoder",
                        "--text-encoder-epochs", "1", "--color-augment", "1"]
    run = train.main(args)
    saved = os.path.join(run_path(run, "text_encoder"), "encoder.keras")
    # colour augmentation reached the encoder: the colour words are in its vocabulary
    assert {"red", "black", "色", "黑"} <= set(load_encoder(saved).vocabulary)
    first = os.path.getmtime(saved)
    train.main(args + ["--epochs", "3"])  # resume: one more epoch, same encoder
    assert os.path.getmtime(saved) == first
    assert load_model(run).vocabulary == load_encoder(saved).vocabulary
    assert load_text_encoder(run).vocabulary == load_encoder(saved).vocabulary


@pytest.mark.parametrize("precision, mixed, gpu, bf16, policy", [
    ("auto", False, False, False, "float32"),
    ("auto", False, False, True, "mixed_bfloat16"),
    ("auto", False, True, False, "mixed_float16"),
    ("float32", False, False, True, "float32"),
    ("bfloat16", False, False, False, "mixed_bfloat16"),
    ("float32", True, False, False, "mixed_bfloat16"),  # the older --mixed-precision flag
])
def test_precision_policy(precision, mixed, gpu, bf16, policy):
    assert distribute.policy_for(precision, mixed, gpu=gpu, bf16=bf16) == policy


@pytest.mark.parametrize("flags, native", [
    ("fpu avx512f amx_bf16 amx_tile", True),  # Intel Sapphire Rapids
    ("fpu avx512f avx512_bf16", True),  # AMD Zen 4
    ("fpu avx avx2 fma", False),  # AVX2 only: bfloat16 emulated, 11x slower
])
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path, flags, native):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor : 0\nflags : {flags}\n")
    assert distribute.cpu_has_bf16(str(cpuinfo)) is native
    assert distribute.policy_for("auto", gpu=False, bf16=distribute.cpu_has_bf16(str(cpuinfo))) \
        == ("mixed_bfloat16" if native else "float32")
    assert not distribute.cpu_has_bf16(str(tmp_path / "missing"))


@pytest.mark.slow
@pytest.mark.parametrize("steps", ["0", "2"])  # whole passes over the data; a fixed step count
def test_a_run_killed_and_resumed_is_the_same_run(tmp_path, tiny_manifest, steps):
    # each phase in its own process, as a real resume is (several runs in one process
    # share TensorFlow's process-wide state, which a user's runs never do)
    args = TINY_ARGS + ["--manifest", tiny_manifest, "--batch-size", "4", "--steps-per-epoch",
                        steps, "--sample-every", "100", "--verbose", "2"]
    # b: SIGKILLed inside an epoch after its first checkpoint, then started again for one
    # more epoch than it finished; a: as many epochs in one go, beside it.
    b = str(tmp_path / "b")
    state = os.path.join(b, "checkpoints", "state.npz")
    process = run_train(args + ["--out-dir", b, "--epochs", "40"])
    deadline = time.time() + 240
    while not os.path.exists(state) and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)  # well inside a later epoch
    process.send_signal(signal.SIGKILL)
    process.wait()
    with np.load(state) as saved:
        done = int(saved["epoch"])
    assert 1 <= done < 40
    epochs = str(done + 1)
    processes = [run_train(args + ["--out-dir", str(tmp_path / folder), "--epochs", epochs])
                 for folder in ("a", "b")]
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]
        assert not quiet.NOTICE.search(output), output[:3000]  # TensorFlow started quietly
    assert f"resuming {b} after epoch {done}" in outputs[1]
    assert f"Epoch {done + 1}/{done + 1}" in outputs[1] and "Epoch 1/" not in outputs[1]
    states = [np.load(tmp_path / run / "checkpoints" / "state.npz") for run in ("a", "b")]
    assert int(states[1]["epoch"]) == done + 1
    assert sorted(states[0].files) == sorted(states[1].files)
    for key in states[0].files:  # weights, EMA, optimizer slots and random streams alike
        np.testing.assert_array_equal(states[0][key], states[1][key], err_msg=key)


def test_init_from_a_missing_model_is_a_clear_error(tmp_path, tiny_manifest):
    with pytest.raises(SystemExit, match="--init-from .*not found"):
        train.main(TINY_ARGS + ["--manifest", tiny_manifest, "--out-dir", str(tmp_path / "run"),
                                "--init-from", str(tmp_path / "nothing")])
