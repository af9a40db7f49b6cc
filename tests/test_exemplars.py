"""Instance conditioning (exemplars.py) and the wider generator tail: the bank, retrieval,
the training candidates, the noise's pick, and a warm start that keeps the drawing."""

import os

import numpy as np
import pytest

from adgan.training import checkpoints, exemplars
from generator import channel_schedule, pick_exemplar

TINY = dict(image_size=32, sequence_length=6, noise_dim=8, embedding_dim=8,
            text_hidden_units=4, generator_channels=4, discriminator_channels=4,
            affine_hidden_units=8, skip_excitation=True)
NAMES = ["dress", "jeans", "pizza"]


def tiny_gan(**settings):
    from model import TextToImageGAN

    return TextToImageGAN(["red", *NAMES, "衣", "裙", "红", "色", "连", "outlined"], **TINY,
                          **settings)


def filled_bank_gan(threshold=0.8, **settings):
    gan = tiny_gan(exemplar_size=8, exemplar_products=3, exemplar_slots=2,
                   exemplar_threshold=threshold, **settings)
    thumbnails = np.arange(3 * 2 * 8 * 8 * 3, dtype=np.int64).reshape(3, 2, 8, 8, 3) % 251
    filled = np.array([[1, 1], [1, 0], [0, 1]], np.float32)
    keys = exemplars.retrieval_keys(NAMES, ["连衣裙", "", ""], [set()] * 3, gan.vectorizer)
    exemplars.fill_bank(gan, exemplars.Catalogue(thumbnails.astype(np.uint8), filled, *keys))
    return gan, thumbnails, filled


def test_the_tail_schedule_has_a_floor():
    assert channel_schedule(64, 16) == [128, 128, 64, 32, 16]
    assert channel_schedule(64, 16, min_channels=32) == [128, 128, 64, 32, 32]


def test_a_wider_generator_with_instance_conditioning_starts_where_the_release_left_off():
    source = tiny_gan(seed=1)
    target = tiny_gan(generator_min_channels=8, exemplar_size=8, exemplar_products=3,
                      exemplar_slots=2)
    new = checkpoints.copy_model_weights(source, target)
    # only the instance conditioning is new; the widened blocks carry the source's weights
    assert new == ["generator/exemplar_8", "ema_generator/exemplar_8",
                   "discriminator/exemplar_critic"]
    np.testing.assert_allclose(source.generate(["red dress"], seed=3).numpy(),
                               target.generate(["red dress"], seed=3).numpy(), atol=1e-5)


def test_widened_keeps_the_old_corner_and_zeroes_rows_that_read_new_channels():
    fresh = np.ones((3, 3, 4, 6))
    out = checkpoints.widened(fresh, np.full((3, 3, 2, 5), 7.0))
    assert (out[:, :, :2, :5] == 7).all() and (out[:, :, 2:, :] == 0).all()
    assert (out[:, :, :2, 5:] == 1).all()  # a new output channel keeps its fresh values


def test_a_products_name_retrieves_its_drawings():
    gan, thumbnails, filled = filled_bank_gan()
    candidates, mask = gan.exemplar_bank.retrieve(gan.encode(["dress", "jeans", "连衣裙"]))
    np.testing.assert_array_equal(mask.numpy(), filled[[0, 1, 0]])
    np.testing.assert_allclose(candidates.numpy()[1], thumbnails[1] / 127.5 - 1.0, atol=1e-6)


def test_a_term_of_one_product_only_is_a_key_of_its_own():
    from model import make_text_vectorizer

    vectorizer = make_text_vectorizer(["red", *NAMES, "衣", "outlined"], 6)
    terms = [{"dress", "衣", "red outlined"}, {"衣", "lipstick"}, {"pizza", "dress"}]
    texts, products = exemplars.retrieval_keys(NAMES, ["", "", ""], terms, vectorizer)
    # names first (English, then Chinese); then only "red outlined": "衣" is shared,
    # "dress" is a name, "lipstick" is out of the vocabulary (as every unknown word is)
    assert texts == [*NAMES, "", "", "", "red outlined"]
    np.testing.assert_array_equal(products, [0, 1, 2, 0, 1, 2, 0])


def test_a_prompt_finds_its_product_by_a_term_as_by_a_name():
    gan = tiny_gan(exemplar_size=8, exemplar_products=3, exemplar_slots=2, exemplar_keys=7,
                   exemplar_threshold=0.999)
    thumbnails = np.zeros((3, 2, 8, 8, 3), np.uint8)
    filled = np.array([[1, 0], [0, 1], [1, 1]], np.float32)
    keys = exemplars.retrieval_keys(NAMES, ["", "", ""], [set(), set(), {"red outlined"}],
                                    gan.vectorizer)
    exemplars.fill_bank(gan, exemplars.Catalogue(thumbnails, filled, *keys))
    _, mask = gan.exemplar_bank.retrieve(gan.encode(["red outlined", "jeans", "连衣裙"]))
    np.testing.assert_array_equal(np.asarray(mask), [filled[2], filled[1], [0, 0]])


def test_a_prompt_found_by_its_chinese_name_is_drawn_as_its_english_name():
    gan = tiny_gan(exemplar_size=8, exemplar_products=3, exemplar_slots=2, exemplar_keys=6)
    keys = exemplars.retrieval_keys(NAMES, ["连衣裙", "", ""], [set()] * 3, gan.vectorizer)
    exemplars.fill_bank(gan, exemplars.Catalogue(
        np.zeros((3, 2, 8, 8, 3), np.uint8), np.ones((3, 2), np.float32), *keys))
    chinese, english = (np.asarray(gan.generate([p], seed=4)) for p in ("连衣裙", "dress"))
    np.testing.assert_allclose(chinese, english, atol=1e-5)
    # found without its colour word: moved by the same step, so "red" stays a part of it
    sentence, inputs = gan.text_inputs(gan.vectorizer(np.array(["red 连衣裙", "连衣裙"])))
    np.testing.assert_allclose(inputs[0][0] - sentence[0], inputs[0][1] - sentence[1], atol=1e-5)
    assert not np.allclose(inputs[0][0], inputs[0][1])
    names_only, _, _ = filled_bank_gan()  # a bank of names alone draws each from its own
    sentence, inputs = names_only.text_inputs(names_only.vectorizer(np.array(["连衣裙"])))
    np.testing.assert_array_equal(sentence, inputs[0])


def test_a_bank_saved_before_its_keys_had_products_loads_with_the_names_as_keys():
    gan, thumbnails, filled = filled_bank_gan()
    bank = gan.exemplar_bank
    old = {str(i): np.asarray(w) for i, w in enumerate((bank.thumbnails, bank.filled, bank.keys))}
    fresh = tiny_gan(exemplar_size=8, exemplar_products=3, exemplar_slots=2)
    fresh.exemplar_bank.load_own_variables(old)
    np.testing.assert_array_equal(np.asarray(fresh.exemplar_bank.key_products),
                                  [0, 1, 2, 0, 1, 2])
    _, mask = fresh.exemplar_bank.retrieve(gan.encode(["jeans", "连衣裙"]))
    np.testing.assert_array_equal(np.asarray(mask), filled[[1, 0]])


def test_a_model_given_another_catalogue_keeps_its_networks():
    gan, thumbnails, filled = filled_bank_gan()
    more = np.concatenate([thumbnails, np.full((1, 2, 8, 8, 3), 7)]).astype(np.uint8)
    keys = exemplars.retrieval_keys([*NAMES, "red"], ["连衣裙", "", "", ""], [set()] * 4,
                                    gan.vectorizer)
    bigger = exemplars.with_catalogue(
        gan, exemplars.Catalogue(more, np.concatenate([filled, [[1, 0]]]), *keys))
    assert bigger.exemplar_bank.products == 4 and bigger.exemplar_bank.key_count == 8
    candidates, mask = bigger.exemplar_bank.retrieve(gan.encode(["red"]))
    assert np.asarray(mask).tolist() == [[1, 0]] and np.allclose(candidates[0, 0], 7 / 127.5 - 1)
    np.testing.assert_array_equal(bigger.generate(["jeans"], seed=2),
                                  gan.generate(["jeans"], seed=2))
    with pytest.raises(ValueError, match="1 drawing-style slots, the model 2"):
        exemplars.with_catalogue(gan, exemplars.Catalogue(more[:, :1], filled[:, :1], *keys))


def test_a_prompt_far_from_every_name_falls_back_to_the_text_alone():
    gan, _, _ = filled_bank_gan(threshold=1.01)  # no cosine reaches it
    _, mask = gan.exemplar_bank.retrieve(gan.encode(["dress"]))
    assert not mask.numpy().any()
    # and the generator draws from the text alone, as without instance conditioning
    assert gan.generate(["dress"], seed=0).shape == (1, 32, 32, 3)


def test_dropping_word_token_runs_moves_the_rest_left():
    ids = np.array([[5, 6, 7, 8, 0, 0], [7, 5, 6, 9, 5, 0], [5, 6, 0, 0, 0, 0]])
    stripped = exemplars.without_sequences(ids, [(5, 6), (9,)])
    # the run 5 6 goes wherever it is, a lone 5 stays, a prompt of nothing else is kept whole
    np.testing.assert_array_equal(np.asarray(stripped), [[7, 8, 0, 0, 0, 0], [7, 5, 0, 0, 0, 0],
                                                         [5, 6, 0, 0, 0, 0]])


def test_colour_and_style_words_do_not_keep_a_prompt_from_its_product():
    import tensorflow as tf

    gan, _, filled = filled_bank_gan(
        threshold=0.999,  # only the name itself reaches it: the extra words must not count
        exemplar_ignored_words=exemplars.ignored_words({"openmoji": ("outlined", "描边")}))
    prompts = ["red dress", "红色连衣裙", "outlined dress", "red jeans"]
    _, mask = gan.text_inputs(gan.vectorizer(tf.constant(prompts)))[1][-2:]
    np.testing.assert_array_equal(np.asarray(mask), filled[[0, 0, 0, 1]])
    # the bank alone, given the prompts as written, finds none of them
    assert not np.asarray(gan.exemplar_bank.retrieve(gan.encode(prompts))[1]).any()


def test_a_model_saved_before_ignored_words_learns_its_runs_style_words(tmp_path):
    import json

    from adgan.runs.artifacts import load_model
    from adgan.runs.layout import run_path

    gan, _, _ = filled_bank_gan()
    assert exemplars.ignored_token_sequences(gan.vectorizer)  # the colour words ("red", 红色)
    os.makedirs(run_path(tmp_path, "final"))
    gan.save(run_path(tmp_path, "model"))
    with open(run_path(tmp_path, "style_words"), "w") as file:
        json.dump({"openmoji": ["outlined", "描边"]}, file)
    loaded = load_model(str(tmp_path))
    assert {"red", "红色", "outlined", "描边"} <= set(loaded.exemplar_ignored_words)


def test_training_candidates_are_the_product_in_its_other_styles():
    import keras

    gan, _, filled = filled_bank_gan()
    products = np.array([0, 0, 1, -1] * 250, np.int32)
    styles = np.array([0, 1, 0, 0] * 250, np.int32)
    _, mask = gan.exemplar_bank.for_training(products, styles, keras.random.SeedGenerator(0))
    mask = mask.numpy().reshape(250, 4, 2)
    kept = mask.any(axis=-1)
    assert (mask[:, 0, 0] == 0).all() and (mask[:, 1, 1] == 0).all()  # never its own drawing
    assert not kept[:, 2].any()  # jeans has no drawing in a style other than its own
    assert not kept[:, 3].any()  # no product (a bundle)
    assert 0.8 < kept[:, :2].mean() < 0.97  # a share of exemplars dropped (DROP_SHARE)


def test_the_noise_picks_among_the_masked_in_candidates_only():
    rng = np.random.default_rng(0)
    candidates = np.stack([np.full((2, 2, 3), float(i)) for i in range(4)])[None].repeat(400, 0)
    mask = np.tile([[0.0, 1.0, 1.0, 0.0]], (400, 1))
    exemplar, has = pick_exemplar(candidates, mask, rng.normal(size=(400, 8)))
    picked = exemplar.numpy()[:, 0, 0, 0]
    assert set(picked) == {1.0, 2.0} and 0.4 < (picked == 1.0).mean() < 0.6
    assert (has.numpy() == 1).all()
    _, has = pick_exemplar(candidates[:1], np.zeros((1, 4)), rng.normal(size=(1, 8)))
    assert has.numpy()[0, 0] == 0


@pytest.mark.parametrize("slot", [0, 1])
def test_the_bank_numbers_products_and_styles_as_the_data_pipeline(slot):
    from conftest import SHIPPED
    import data_loader

    examples, _ = data_loader.load_examples(
        f"{SHIPPED}/captions.csv", 8, filters={"group": ["Food & Drink"],
                                                "style": ["noto", "twemoji"]})
    examples = examples.iloc[:40]
    words = {"noto": ("flat", "扁平"), "twemoji": ("twemoji", "推特")}
    thumbnails, filled, english, _ = exemplars.bank_arrays(examples, words, size=8)
    _, columns = data_loader.epoch_rows(examples, 0, words)
    style_ids, product_ids = columns[6], columns[8]
    rows = np.flatnonzero(style_ids == slot)
    assert filled[product_ids[rows], slot].all()
    row = rows[0]
    np.testing.assert_array_equal(
        thumbnails[product_ids[row], slot],
        data_loader.load_image_rgba(examples["path"].iloc[row], 8)[..., :3])
    assert english[product_ids[row]] == examples["captions"].iloc[row][0]


def test_the_shape_term_reads_the_silhouette_not_the_colour():
    from adgan.training.losses import ink, shape_loss

    white, red, blue = (np.ones((1, 16, 16, 3), np.float32) * v for v in (1.0, 0.0, 0.0))
    red[..., 0], blue[..., 2] = 1.0, 1.0
    red[..., 1:], blue[..., :2] = -1.0, -1.0
    assert float(ink(white, 4).numpy().max()) == 0.0 and float(ink(red, 4).numpy().min()) == 1.0
    has = np.ones((1, 1), np.float32)
    # a red drawing of a blue exemplar's outline costs nothing; a blank one the whole outline
    assert float(shape_loss(red, blue[:, :8, :8], has)) == 0.0
    assert float(shape_loss(white, blue[:, :8, :8], has)) == 1.0
    assert float(shape_loss(white, blue[:, :8, :8], 0 * has)) == 0.0  # no exemplar, no term


def test_the_instance_train_step_runs_in_mixed_bfloat16():
    """One eager step at 32 px, the least that shows it: `--precision auto` picks bfloat16 on
    AMX/AVX512-BF16 CPUs, where the exemplar pick once mixed bfloat16 and float32."""
    import keras
    import tensorflow as tf

    keras.mixed_precision.set_global_policy("mixed_bfloat16")  # conftest resets it
    gan, _, _ = filled_bank_gan()
    gan.compile()
    rng = np.random.default_rng(0)
    batch = {"token_ids": tf.constant(rng.integers(2, 8, (4, 6)), tf.int64),
             "images": tf.random.uniform((4, 32, 32, 3), -1.0, 1.0, seed=0),
             "concept_id": tf.constant([0, 0, 1, 2]), "product_id": tf.constant([0, 0, 1, 2]),
             "style_id": tf.constant([0, 1, 0, 1])}
    logs = gan.train_step(batch)
    assert all(np.isfinite(float(value)) for value in logs.values())
