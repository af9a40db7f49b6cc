import json
import os

import keras
import numpy as np
import pytest

from adgan.data import colors
from adgan.text import encoder
from adgan.text.encoder import DualEncoder, ImageEncoder, load_encoder
import data_loader


def test_image_encoder_shapes_and_config_round_trip():
    image_encoder = ImageEncoder(image_size=16, base_channels=2, code_dim=6)
    features, code = image_encoder(np.zeros((3, 16, 16, 3), np.float32))
    assert features.shape == (3, 16) and code.shape == (3, 6)  # 8 * base channels
    config = image_encoder.get_config()
    assert ImageEncoder.from_config(config).get_config() == config


def test_train_step_lowers_the_loss_and_saves_and_reloads(tmp_path):
    keras.utils.set_random_seed(0)  # the start must not depend on which tests ran before
    dual = DualEncoder(["red", "dress", "shoe", "红"], image_size=16, sequence_length=4,
                       embedding_dim=4, text_hidden_units=4, image_channels=2)
    dual.compile(optimizer=keras.optimizers.Adam(1e-2))
    rng = np.random.default_rng(0)
    batch = {"token_ids": dual.vectorizer(np.array(["red", "dress", "shoe", "红"])),
             "images": rng.uniform(-1, 1, (4, 16, 16, 3)).astype("float32")}
    first = float(dual.train_step(batch)["loss"])
    for _ in range(20):
        last = float(dual.train_step(batch)["loss"])
    assert np.isfinite(first) and last < first
    path = str(tmp_path / "e.keras")
    dual.save(path)
    again = keras.saving.load_model(path)
    np.testing.assert_allclose(again.embed_texts(["red dress"]), dual.embed_texts(["red dress"]),
                               rtol=1e-5)


def test_trained_encoder_folder_saves_and_reloads(tiny_encoder):
    assert {"encoder.keras", "vocabulary.txt", "report.json"} <= set(os.listdir(tiny_encoder))
    report = json.load(open(os.path.join(tiny_encoder, "report.json")))
    # one image per row of the 16-row manifest; retrieval among its 16 names is a rate
    assert report["examples"] == 16 and report["config"]["epochs"] == 1
    assert report["retrieval_top1_train"] in [k / 16 for k in range(17)]
    loaded = load_encoder(tiny_encoder)
    texts = loaded.embed_texts(["red dress", "手机"])
    features, codes = loaded.embed_images(np.zeros((3, 32, 32, 3), np.float32))  # resized
    assert texts.shape == (2, 32) and codes.shape == (3, 32) and features.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(codes, axis=1), 1.0, rtol=1e-5)


def test_encoder_config_takes_the_loader_and_colour_defaults():
    config = encoder.EncoderConfig()
    assert config.caption_columns == data_loader.DEFAULT_CAPTION_COLUMNS
    assert config.color_subgroups == colors.DEFAULT_SUBGROUPS and config.seed == 1


def test_missing_encoder_and_manifest_are_clear_errors(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="train-encoder"):
        load_encoder(str(tmp_path / "none"))
    with pytest.raises(SystemExit) as exit_info:
        encoder.main(["--data", str(tmp_path / "none.csv"), "--out", str(tmp_path / "enc")])
    assert exit_info.value.code == 1 and "manifest not found" in capsys.readouterr().err
