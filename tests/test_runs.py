import csv
import dataclasses
import json
import os
import shutil

import numpy as np
import pytest

from adgan.drawing.calibrate import calibration_pairs, load_calibration, load_gate
from adgan.drawing.gate import Gate
from adgan.runs.artifacts import load_model, load_text_encoder, load_vocabulary
from adgan.runs.layout import RunError, load_config, run_or_shipped, run_path
from adgan.runs.release import read_export_info, write_release
from adgan.runs.rows import concept_names, manifest_rows, row_filter
from adgan.training import checkpoints
from adgan.training.config import LEGACY_SETTINGS, TrainConfig, resolve_config
from conftest import SHIPPED, copy_run, shipped_rows, uncalibrated_copy, write_manifest


def test_config_reads_back_typed(trained_run):
    config = load_config(trained_run)
    assert isinstance(config, TrainConfig)
    assert isinstance(config.caption_columns, tuple) and isinstance(config.groups, tuple)
    saved = json.load(open(run_path(trained_run, "config"), encoding="utf-8"))
    assert dataclasses.asdict(config) == {k: tuple(v) if isinstance(v, list) else v
                                          for k, v in saved.items()}


def test_an_older_config_takes_the_legacy_settings_and_a_broken_one_is_refused(tmp_path):
    config = resolve_config(["--preset", "smoke"])
    saved = dataclasses.asdict(config)
    del saved["color_augment"], saved["color_subgroups"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    loaded = load_config(str(tmp_path))
    assert loaded.color_augment == LEGACY_SETTINGS["color_augment"] == 0
    for content, message in [({**saved, "epochs": "2"}, "epochs: expected an integer"),
                             ({**saved, "new_knob": 1}, "unknown setting\\(s\\) new_knob"),
                             ({"seed": 0}, "lacks the setting\\(s\\) affine_hidden_units"),
                             ([1, 2], "expected a JSON object")]:
        (tmp_path / "config.json").write_text(json.dumps(content))
        with pytest.raises(RunError, match=message):
            load_config(str(tmp_path))
    with pytest.raises(RunError, match="config.json not found"):
        load_config(str(tmp_path / "elsewhere"))


def test_manifest_rows_apply_the_runs_filter(trained_run):
    config = load_config(trained_run)
    rows, report = manifest_rows(config, config.split)
    assert len(rows) == report["usable"] == 16
    only_noto = dataclasses.replace(config, styles=("noto",))
    assert len(manifest_rows(only_noto, config.split)[0]) == 8
    assert row_filter(only_noto) == {"group": (), "style": ("noto",)}
    marked, _ = manifest_rows(config, config.split, mark_recolorable=True)
    assert marked["recolorable"].sum() == 4  # dress and jeans, in both styles
    assert "dress" in concept_names(config) and "连衣裙" in concept_names(config)


def test_gate_of_a_calibrated_and_an_uncalibrated_run(trained_run, tmp_path):
    calibration = load_calibration(trained_run)
    gate = load_gate(trained_run)
    assert gate == Gate.from_calibration(calibration)
    assert load_gate(trained_run, min_score=0.7).min_score == 0.7
    assert load_gate(trained_run, gated=False) == gate  # calibrated: scores stay calibrated
    with pytest.raises(RunError, match=f"adgan-calibrate --run {tmp_path}"):
        load_gate(str(tmp_path))
    assert load_gate(str(tmp_path), gated=False) == Gate.ungated()
    (tmp_path / "final").mkdir()
    (tmp_path / "final" / "calibration.json").write_text("{")
    with pytest.raises(RunError, match="cannot read the gate's calibration"):
        load_gate(str(tmp_path))


def test_model_vocabulary_and_missing_files(trained_run, tmp_path):
    gan = load_model(trained_run)
    assert gan.vocabulary == load_vocabulary(trained_run)
    assert load_text_encoder(trained_run) is None  # the smoke preset has none
    with pytest.raises(RunError, match="final/model.keras not found"):
        load_model(str(tmp_path))
    assert read_export_info(str(tmp_path)) is None


def test_a_release_keeps_what_drawing_needs_and_draws_the_same(trained_run, release):
    assert sorted(os.listdir(os.path.join(release, "final"))) == [
        "calibration.json", "model.keras", "vocabulary.txt"]
    assert not os.path.exists(run_path(release, "checkpoints"))
    # the optimizer state is left behind: about half of a training run's model file
    assert (os.path.getsize(run_path(release, "model"))
            < 0.75 * os.path.getsize(run_path(trained_run, "model")))
    # the manifest is named from the release's folder, so a moved checkout still finds it
    with open(run_path(release, "config"), encoding="utf-8") as f:
        assert not os.path.isabs(json.load(f)["manifest"])
    assert load_config(release) == load_config(trained_run)
    assert load_gate(release) == load_gate(trained_run)
    texts = ["dress", "jeans"]
    assert np.array_equal(load_model(release).generate(texts, seed=3),
                          load_model(trained_run).generate(texts, seed=3))
    with pytest.raises(RunError, match="exists: remove it first"):
        write_release(trained_run, release)


def test_a_release_of_the_whole_catalogue_draws_a_held_out_product_around_its_drawings(
        trained_run, tmp_path):
    """`export.py --release --catalogue all` (no training): the run's networks with a bank
    rebuilt from its manifest, to which a held-out product (telephone) was added."""
    import export
    import tensorflow as tf
    from data_loader import load_image_rgba

    run = copy_run(trained_run, tmp_path)
    data = tmp_path / "data"
    shutil.copytree(os.path.dirname(load_config(run).manifest), data)
    with open(data / "captions.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    held = [dict(row, split="test") for row in shipped_rows(2, names=("telephone",))]
    settings = {**json.load(open(run_path(run, "config"))),
                "manifest": write_manifest(str(data), rows + held)}
    with open(run_path(run, "config"), "w") as f:
        json.dump(settings, f)
    release = export.main(["--run", run, "--release", str(tmp_path / "release"),
                           "--catalogue", "all"])
    trained, whole = load_model(run), load_model(release)
    assert whole.exemplar_bank.products == trained.exemplar_bank.products + 1
    candidates, mask = whole.text_inputs(whole.vectorizer(tf.constant(["telephone"])))[1][-2:]
    drawing = load_image_rgba(os.path.join(SHIPPED, held[0]["image"]), 8)[..., :3] / 127.5 - 1
    assert np.asarray(mask).sum() == 2  # its two drawings (noto, twemoji), one of them this
    assert any(np.allclose(c, drawing, atol=1e-6) for c in np.asarray(candidates)[0])
    texts = ["dress", "jeans"]  # the products it trained on draw as before
    assert np.array_equal(whole.generate(texts, seed=3), trained.generate(texts, seed=3))
    with pytest.raises(SystemExit):  # argparse: not a catalogue
        export.main(["--run", run, "--release", str(tmp_path / "r2"), "--catalogue", "test"])


def test_an_uncalibrated_run_is_not_released(trained_run, tmp_path):
    run = uncalibrated_copy(trained_run, tmp_path / "run")
    with pytest.raises(RunError, match="adgan-calibrate --run"):
        write_release(str(run), str(tmp_path / "release"))
    assert not os.path.exists(tmp_path / "release")


def test_run_or_shipped(trained_run, tmp_path, monkeypatch):
    assert run_or_shipped("runs/mine") == "runs/mine"
    monkeypatch.setattr("adgan.runs.layout.SHIPPED_RUN", str(tmp_path / "models" / "adgan"))
    with pytest.raises(RunError, match="no shipped model in .*pass --run runs/quick"):
        run_or_shipped()
    monkeypatch.setattr("adgan.runs.layout.SHIPPED_RUN", trained_run)
    assert run_or_shipped(None) == trained_run


def test_copying_weights_starts_a_model_where_another_left_off(trained_run):
    from model import TextToImageGAN

    source = load_model(trained_run)
    target = TextToImageGAN.from_config({**source.get_config(), "seed": 5})
    assert checkpoints.copy_model_weights(source, target) == []
    np.testing.assert_array_equal(source.generate(["dress"], seed=2).numpy(),
                                  target.generate(["dress"], seed=2).numpy())
    other = TextToImageGAN.from_config({**source.get_config(), "vocabulary": ["dress"]})
    with pytest.raises(checkpoints.CheckpointError, match="another vocabulary"):
        checkpoints.copy_model_weights(source, other)


def test_new_layers_start_fresh_and_leave_the_drawing_unchanged():
    from model import TextToImageGAN

    tiny = dict(image_size=32, sequence_length=6, noise_dim=8, embedding_dim=8,
                text_hidden_units=4, generator_channels=4, discriminator_channels=4,
                affine_hidden_units=8, skip_excitation=True)
    source = TextToImageGAN(["red", "dress"], **tiny, seed=1)
    target = TextToImageGAN(["red", "dress"], **tiny, word_attention=True)
    assert checkpoints.copy_model_weights(source, target) == [
        "generator/attend_16", "generator/attend_32", "ema_generator/attend_16",
        "ema_generator/attend_32"]
    # the attention's gate starts at zero: the same pictures until it is trained
    np.testing.assert_allclose(source.generate(["red dress"], seed=3).numpy(),
                               target.generate(["red dress"], seed=3).numpy(), atol=1e-6)


def test_a_bundle_run_calibrates_its_gate_on_bundles_too(trained_run):
    config = load_config(trained_run)
    vectorizer = load_model(trained_run).vectorizer
    texts, images = calibration_pairs(config, vectorizer, config.split)
    with_bundles = dataclasses.replace(config, bundle_share=0.25)
    more_texts, more_images = calibration_pairs(with_bundles, vectorizer, config.split)
    assert more_texts[:len(texts)] == texts
    added = more_texts[len(texts):]
    assert len(added) == round(0.25 * len(texts)) and len(more_images) == len(more_texts)
    assert all(any(c in t for c in ("和", "与", "配", "加", " and ", " with ", " & "))
               for t in added)
