import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from adgan.upsampling import train_upsampler, upsampler
from conftest import SHIPPED


TINY = ["--native-size", "16", "--patch", "8", "--batch-size", "4", "--channels", "4",
        "--num-convs", "1", "--max-images", "6", "--verbose", "0"]


def pictures(count=2, side=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, side, side, 3), dtype=np.uint8)


def test_upsampler_round_trips_through_keras(tmp_path):
    model = upsampler.Upsampler(channels=4, num_convs=2)
    weights = [np.random.default_rng(i).normal(size=w.shape) * 0.1
               for i, w in enumerate(model.get_weights())]
    model.set_weights(weights)
    path = str(tmp_path / "upsampler.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, upsampler.Upsampler) and loaded.get_config() == model.get_config()
    images = upsampler.to_float_tensor(pictures())
    np.testing.assert_allclose(loaded(images).numpy(), model(images).numpy(), atol=1e-6)
    assert model(images).shape == (2, 64, 64, 3)


def test_an_untrained_upsampler_is_nearest_neighbour():
    images = upsampler.to_float_tensor(pictures())
    out = upsampler.Upsampler(channels=4, num_convs=1)(images).numpy()
    np.testing.assert_allclose(out, np.repeat(np.repeat(images.numpy(), 4, 1), 4, 2), atol=1e-6)


@pytest.mark.parametrize("learned", [True, False])
def test_enlarge_gives_every_size_alike_in_a_graph_and_eagerly(learned):
    model = upsampler.Upsampler(channels=4, num_convs=1) if learned else None
    images = pictures()
    in_graph = tf.function(lambda x, s: upsampler.enlarge(x, s, model))
    assert upsampler.output_sizes(16) == (16, 32, 64)
    for size in (16, 32, 64):
        eager = upsampler.enlarge(images, size, model).numpy()
        assert eager.shape == (2, size, size, 3) and eager.dtype == np.uint8
        np.testing.assert_array_equal(in_graph(images, tf.constant(size, tf.int64)).numpy(), eager)
    np.testing.assert_array_equal(upsampler.enlarge(images, 16, model).numpy(), images)
    big = upsampler.enlarge(images, 64, model).numpy().astype(np.float32)
    middle = upsampler.enlarge(images, 32, model).numpy().astype(np.float32)
    # 2N is the 4N picture area-reduced: the same drawing at every size
    assert np.abs(middle - big.reshape(2, 32, 2, 32, 2, 3).mean((2, 4))).max() <= 1.0


def test_low_resolution_matches_the_generator_s_training_pictures():
    large = pictures(1, 64)[0]
    small = upsampler.low_resolution(large, 16)
    assert small.shape == (16, 16, 3) and small.dtype == np.uint8


def test_feature_extractor_takes_any_size(tiny_encoder):
    from adgan.text.encoder import load_encoder  # the tiny dual encoder of the suite
    extractor = upsampler.feature_extractor(load_encoder(tiny_encoder))
    for side in (16, 64):
        pooled, maps = extractor(upsampler.to_float_tensor(pictures(2, side)))
        assert pooled.shape[0] == 2 and len(maps) == len(upsampler.FEATURE_LAYERS)


def test_training_writes_the_upsampler_and_resumes(tmp_path, tiny_encoder):
    out = str(tmp_path / "run")
    manifest = os.path.join(SHIPPED, "captions.csv")
    args = TINY + ["--data", manifest, "--out", out, "--checkpoint-every", "2",
                   "--encoder", tiny_encoder]
    path = train_upsampler.main(args + ["--steps", "2"])
    assert path == os.path.join(out, "upsampler.keras")
    assert isinstance(keras.saving.load_model(path), upsampler.Upsampler)
    train_upsampler.main(args + ["--steps", "4", "--feature-weight", "0"])
    report = json.load(open(os.path.join(out, "upsampler_report.json")))
    assert report["steps"] == 4 and report["resumed_from"] == 2 and report["pairs"] == 6
    assert report["parameters"] > 0
    assert sorted(os.listdir(os.path.join(out, "upsampler_checkpoints")))[0] == "checkpoint"
    assert not [n for n in os.listdir(out) if n.startswith(".")]  # no temporary left


def test_fine_tuning_with_the_generator_s_artefacts(trained_run, tmp_path):
    start = str(tmp_path / "start.keras")
    upsampler.Upsampler(channels=4, num_convs=1).save(start)
    out = str(tmp_path / "tuned")
    train_upsampler.main(TINY + ["--data", os.path.join(SHIPPED, "captions.csv"), "--out", out,
                                 "--init-from", start, "--artifacts-from", trained_run,
                                 "--artifact-images", "8", "--steps", "1",
                                 "--feature-weight", "0"])
    report = json.load(open(os.path.join(out, "upsampler_report.json")))
    assert report["artifact_patches"] > 0 and report["config"]["init_from"] == start


def test_artifact_patches_are_flat_product_windows_centred():
    pictures = np.full((1, 16, 16, 3), 255, np.uint8)
    pictures[0, 2:14, 2:14] = 90  # a flat grey product ...
    pictures[0, 2:14, 8] = 130    # ... with one stripe, as the generator draws them
    found = train_upsampler.artifact_patches(pictures, 4, keep=1.0)
    assert found.shape[1:] == (4, 4, 3) and len(found) > 0
    np.testing.assert_allclose(found.mean(axis=(1, 2)), 0, atol=1e-6)
    assert np.abs(found).max() > 0.05  # the stripe is in the residual
    tiles = train_upsampler.tiled(found, 3, 8, np.random.default_rng(0))
    assert tiles.shape == (3, 8, 8, 3)


@pytest.mark.parametrize("flags, message", [
    ([], "--data"), (["--data", "x.csv", "--out", "o", "--patch", "99"], "--patch")])
def test_bad_flags_are_usage_errors(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_upsampler.main(flags)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_a_missing_manifest_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_upsampler.main(TINY + ["--data", str(tmp_path / "no.csv"), "--out", str(tmp_path)])
    assert exit_info.value.code == 1 and "manifest not found" in capsys.readouterr().err


def test_compare_measures_every_method_on_the_same_pictures(trained_run, tiny_encoder, tmp_path):
    from adgan.upsampling import compare_upsamplers
    from conftest import shipped_rows, write_manifest

    rows = [dict(row, split="test" if i < 3 else "train")
            for i, row in enumerate(shipped_rows(10))]
    manifest = write_manifest(str(tmp_path / "data"), rows)
    extra = str(tmp_path / "other.keras")
    upsampler.Upsampler(channels=4, num_convs=1).save(extra)
    out = str(tmp_path / "report")
    report = compare_upsamplers.main([
        "--data", manifest, "--run", trained_run, "--encoder", tiny_encoder, "--out", out,
        "--real-pairs", "3", "--generated", "3", "--real", "4", "--timing-repeats", "1",
        "--upsampler", f"untrained={extra}"])
    results = report["results"]
    assert {"bicubic", "Lanczos + unsharp mask (before)", "learned (untrained)"} <= set(results)
    assert report["counts"] == {"real_pairs": 3, "generated": 3, "real": 4}
    for name, row in results.items():
        assert set(row) == {"psnr_db", "feature_distance", "fid_generated", "ms_per_picture"}
        assert np.isfinite(row["fid_generated"]), name
        assert name.endswith("(reference)") or row["ms_per_picture"] >= 0, name
    assert sorted(os.listdir(out)) == ["compare.png", "results.json", "results.md"]
    assert "| learned (untrained) |" in open(os.path.join(out, "results.md")).read()
