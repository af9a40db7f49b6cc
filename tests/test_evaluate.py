import json
import os

import numpy as np
import pytest

import evaluate
import generate
import train
from conftest import TINY_ARGS
from encoder import load_encoder

# text sizes equal the smoke preset's, so the encoder can start a smoke run
TINY_ENCODER = ["--image-size", "16", "--epochs", "1", "--batch-size", "8",
                "--image-channels", "4", "--embedding-dim", "16", "--text-hidden-units", "16",
                "--sequence-length", "8", "--verbose", "0"]


@pytest.fixture(scope="module")
def tiny_encoder(trained_run, tmp_path_factory):
    manifest = json.load(open(os.path.join(trained_run, "config.json")))["manifest"]
    out = str(tmp_path_factory.mktemp("encoder") / "enc")
    assert evaluate.main(["train-encoder", "--data", manifest, "--out", out] + TINY_ENCODER) == out
    return out


def test_encoder_saves_and_reloads(tiny_encoder):
    assert {"encoder.keras", "vocabulary.txt", "report.json"} <= set(os.listdir(tiny_encoder))
    report = json.load(open(os.path.join(tiny_encoder, "report.json")))
    assert report["examples"] == 16 and 0.0 <= report["retrieval_top1_train"] <= 1.0
    encoder = load_encoder(tiny_encoder)
    texts = encoder.embed_texts(["red dress", "手机"])
    features, codes = encoder.embed_images(np.zeros((3, 32, 32, 3), np.float32))  # resized
    assert texts.shape == (2, 32) and codes.shape == (3, 32) and features.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(codes, axis=1), 1.0, rtol=1e-5)


def test_report_has_references_and_gate_rows(trained_run, tiny_encoder, tmp_path):
    out = str(tmp_path / "eval" / "report.json")
    report = evaluate.main(["--run", trained_run, "--encoder", tiny_encoder, "--split", "train",
                            "--out", out, "--samples-per-prompt", "2", "--repeats", "2"])
    labels = list(report["rows"])
    assert labels[:2] == ["real images (ceiling)", "real images, shuffled prompts (floor)"]
    assert labels[2] == "run (ungated)" and labels[3].startswith("run (gated: DRS")
    gated = report["rows"][labels[3]]
    assert 0.0 <= gated["accepted"] <= 1.0 and 1.0 <= gated["tries_per_image"] <= 8.0
    assert gated["images"] == 2 * report["prompts"] and gated["fid_in_domain"] >= 0.0
    for row in report["rows"].values():
        assert 0.0 <= row["r_precision"] <= 1.0
    for suffix in (".json", ".md", ".png"):
        assert os.path.exists(str(tmp_path / "eval" / "report") + suffix)
    assert "FID (in-domain encoder)" in open(str(tmp_path / "eval" / "report.md")).read()
    # colour accuracy: the run's dress and jeans rows in every palette colour
    color = report["color"]
    assert color["prompts"] == 4 * len(color["colors"])  # 2 concepts x 2 languages
    assert color["rows"]["real images, recoloured (ceiling)"]["accuracy"] == 1.0
    assert list(color["rows"])[1:] == labels[2:4]
    for row in color["rows"].values():
        assert 0.0 <= row["accuracy"] <= 1.0 and set(row["per_color"]) == set(color["colors"])
    assert color["rows"][labels[2]]["images"] == 2 * color["prompts"]
    assert os.path.exists(str(tmp_path / "eval" / "report_color.png"))
    assert "Colour accuracy" in open(str(tmp_path / "eval" / "report.md")).read()


def test_missing_encoder_is_a_clear_error(trained_run, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["--run", trained_run, "--encoder", str(tmp_path / "none"),
                       "--split", "train", "--out", str(tmp_path / "r.json")])
    assert exit_info.value.code == 1 and "train-encoder" in capsys.readouterr().err


def test_baseline_recipe_trains_saves_and_draws(tiny_manifest, tmp_path):
    run = train.main(TINY_ARGS + ["--recipe", "baseline", "--manifest", tiny_manifest,
                                  "--out-dir", str(tmp_path / "baseline")])
    gan = generate.load_run(run)
    assert type(gan).__name__ == "BaselineGAN"
    files = generate.main(["--run", run, "--out-dir", str(tmp_path / "img"), "-n", "2", "dress"])
    assert len(files) == 2
    with pytest.raises(SystemExit):
        train.resolve_config(["--recipe", "stylegan"])


def test_gan_starts_from_a_pretrained_frozen_text_encoder(tiny_encoder, tiny_manifest, tmp_path):
    run = train.main(TINY_ARGS + ["--manifest", tiny_manifest, "--out-dir", str(tmp_path / "r"),
                                  "--text-encoder", tiny_encoder, "--freeze-text-encoder"])
    gan, pretrained = generate.load_run(run), load_encoder(tiny_encoder)
    assert gan.vocabulary == pretrained.vocabulary
    for ours, theirs in zip(gan.text_encoder.get_weights(), pretrained.text_encoder.get_weights()):
        np.testing.assert_array_equal(ours, theirs)  # frozen: unchanged by training
    with pytest.raises(SystemExit, match="other sizes: embedding_dim 16 \\(run: 32\\)"):
        train.main(TINY_ARGS + ["--manifest", tiny_manifest, "--out-dir", str(tmp_path / "m"),
                                "--text-encoder", tiny_encoder, "--embedding-dim", "32"])


def test_auto_text_encoder_is_trained_once_per_run(tiny_manifest, tmp_path):
    args = TINY_ARGS + ["--manifest", tiny_manifest, "--out-dir", str(tmp_path / "r"),
                        "--text-encoder", "auto", "--freeze-text-encoder",
                        "--text-encoder-epochs", "1", "--color-augment", "1"]
    run = train.main(args)
    saved = os.path.join(run, "text_encoder", "encoder.keras")
    # colour augmentation reached the encoder: the colour words are in its vocabulary
    assert {"red", "black", "色", "黑"} <= set(load_encoder(saved).vocabulary)
    first = os.path.getmtime(saved)
    train.main(args + ["--epochs", "3"])  # resume: one more epoch, same encoder
    assert os.path.getmtime(saved) == first
    assert generate.load_run(run).vocabulary == load_encoder(saved).vocabulary


def test_train_encoder_on_a_missing_manifest_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["train-encoder", "--data", str(tmp_path / "none.csv"),
                       "--out", str(tmp_path / "enc")] + TINY_ENCODER)
    assert exit_info.value.code == 1 and "manifest not found" in capsys.readouterr().err


def test_true_fid_needs_a_local_inception_file(trained_run, tiny_encoder, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["--run", trained_run, "--encoder", tiny_encoder, "--split", "train",
                       "--out", str(tmp_path / "r.json"),
                       "--inception-weights", str(tmp_path / "inception.h5")])
    assert exit_info.value.code == 1 and "inception.h5 not found" in capsys.readouterr().err
    table = evaluate.format_table({"r_precision_candidates": 100, "rows": {
        "x": {"r_precision": 0.5, "r_precision_std": 0.1, "diversity": 0.3,
              "fid_in_domain": 2.0, "kid_in_domain": 0.001, "kid_in_domain_std": 0.0002,
              "fid_inception": 40.0}}})
    assert "FID (Inception)" in table and "| 40.00 |" in table
