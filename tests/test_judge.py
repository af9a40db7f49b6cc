import json
import os

import numpy as np
import pytest

from adgan.evaluation import judge
from conftest import SHIPPED, shipped_rows, write_manifest
import data_loader


def test_the_judge_maps_images_of_any_side_to_concept_logits():
    model = judge.concept_judge(5, image_size=16, channels=(4, 8))
    assert model.output_shape == (None, 5)
    # a stage halves the side each: 16 -> 8 -> 4, then pooled
    assert model.get_layer("stage1_b_add").output.shape[1:] == (4, 4, 8)
    assert model(np.zeros((2, 16, 16, 3), np.float32)).dtype == "float32"


def test_augmentation_changes_training_images_only():
    images = np.random.default_rng(0).uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32)
    augment = judge.augmentation(seed=0)
    np.testing.assert_array_equal(augment(images, training=False), images)
    assert not np.allclose(augment(images, training=True), images)


def test_top1_among_counts_an_image_right_only_when_its_concept_outscores_every_distractor():
    logits = np.array([[5.0, 1.0, 2.0, 0.0],    # concept 0 first: right
                       [5.0, 1.0, 2.0, 0.0],    # concept 2 behind 0: wrong when 0 is drawn
                       [0.0, 0.0, 0.0, 9.0]])   # concept 3 first: right
    # with 4 candidates from a pool of 4, every other concept is a distractor
    mean, std = judge.top1_among(logits, [0, 2, 3], pool=[0, 1, 2, 3], candidates=4, repeats=3)
    assert mean == pytest.approx(2 / 3) and std == 0.0
    # a pool without concept 0 never draws it against concept 2
    assert judge.top1_among(logits, [2], pool=[1, 2, 3], candidates=3)[0] == 1.0


def test_holdout_keeps_out_a_fixed_number_of_images_of_concepts_that_have_enough():
    import pandas as pd
    rows = pd.DataFrame({"concept": [0, 0, 0, 0, 1, 1, 2]})
    held = judge.choose_holdout(rows, per_concept=2, min_images=3, seed=0)
    assert held[:4].sum() == 2 and not held[4:].any()
    np.testing.assert_array_equal(held, judge.choose_holdout(rows, 2, 3, seed=0))


def test_trained_judge_folder_reloads_with_its_concepts_and_unseen_images(tiny_judge):
    assert {"judge.keras", "concepts.csv", "images.csv", "report.json"} <= set(
        os.listdir(tiny_judge))
    assert not os.path.exists(os.path.join(tiny_judge, "backup"))  # removed when finished
    report = json.load(open(os.path.join(tiny_judge, "report.json")))
    # 8 concepts in two styles each; one drawing of each kept out of training
    assert report["concepts"] == 8 and report["train_images"] == 8
    assert report["held_out_images"] == 8 and 0.0 <= report["held_out_accuracy"] <= 1.0
    loaded = judge.load_judge(tiny_judge)
    assert len(loaded.concepts) == 8 and loaded.image_size == 16
    held = loaded.images[loaded.images["held_out"]]
    assert len(loaded.images) == 16 and sorted(held["concept"]) == list(range(8))
    assert all(os.path.exists(p) for p in loaded.images["path"])
    # names in either language and any case, then keywords, find a concept
    assert loaded.concept_of("dress") == loaded.concept_of("连衣裙") == loaded.concept_of("Dress")
    assert loaded.concepts["name_zh"].iloc[loaded.concept_of("dress")] == "连衣裙"
    assert loaded.concept_of("咖啡") == loaded.concept_of("hot beverage")  # a keyword
    assert not loaded.knows("bicycle")
    logits = loaded.logits(np.zeros((3, 64, 64, 3), np.uint8))  # any side: resized
    assert logits.shape == (3, 8)


def test_the_judge_holds_out_real_drawings_it_never_trains_on(tmp_path):
    # The shipped catalogue: every concept with four or more drawings gives two.
    rows, concepts = judge.catalogue(os.path.join(SHIPPED, "captions.csv"))
    held = judge.choose_holdout(rows, 2, 4, seed=7)
    counts = rows.assign(held=held).groupby("concept")["held"].agg(["size", "sum"])
    assert (counts["sum"] == np.where(counts["size"] >= 4, 2, 0)).all()
    assert len(concepts) == rows["concept"].nunique() == 1378
    assert set(concepts["split"]) == {"train", "test"}
    # a concept's row is its first image's: lipstick is held out and found by 口红
    lipstick = concepts.index[concepts["name_en"] == "lipstick"][0]
    assert concepts["split"][lipstick] == "test" and "口红" in concepts["keywords_zh"][lipstick]


def test_judge_training_on_a_bad_manifest_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        judge.main(["--data", str(tmp_path / "none.csv"), "--out", str(tmp_path / "j")])
    assert exit_info.value.code == 1 and "none.csv" in capsys.readouterr().err
    manifest = write_manifest(str(tmp_path / "data"), shipped_rows(2),
                              columns=["image", "name_zh"])
    with pytest.raises(SystemExit):
        judge.main(["--data", manifest, "--out", str(tmp_path / "j")])
    assert "name_en" in capsys.readouterr().err


def test_missing_judge_says_how_to_train_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-judge"):
        judge.load_judge(str(tmp_path))


def test_the_shipped_judge_names_real_drawings_it_never_saw():
    """The release's judge (models/judge, made by `train-judge` with its defaults): its
    unseen real drawings of two product styles are named among 100 concepts far above
    chance (0.01), and the drawings it trained on above those."""
    loaded = judge.load_judge()
    report = json.load(open(os.path.join(judge.DEFAULT_JUDGE, "report.json")))
    assert report["concepts"] == len(loaded.concepts) == 1378
    assert report["config"]["holdout_per_concept"] == 2 and report["held_out_images"] == 2756
    assert all(os.path.exists(p) for p in loaded.images["path"])
    products = loaded.concepts["group"].isin(["Food & Drink", "Objects"]).to_numpy()
    pool = np.flatnonzero(products)
    chosen = loaded.images[loaded.images["concept"].isin(pool)
                           & loaded.images["style"].isin(["noto", "twemoji"])]
    logits = loaded.logits(np.stack([data_loader.load_image(p, 32) for p in chosen["path"]]))
    rate = {held: judge.top1_among(logits[(chosen["held_out"] == held).to_numpy()],
                                   chosen["concept"][chosen["held_out"] == held], pool,
                                   repeats=1)[0]
            for held in (True, False)}
    assert rate[True] > 0.4 and rate[False] > rate[True]


def test_a_copied_real_drawing_is_called_a_copy(tiny_judge):
    from adgan.evaluation import judging

    loaded = judge.load_judge(tiny_judge)
    drawings = judging.real_drawings(loaded)
    images, _, concepts, _ = drawings
    concept = concepts[0]
    mine = np.flatnonzero(concepts == concept)
    copied = np.stack([images[mine[0]], 255 - images[mine[0]]])  # the drawing, its negative
    check = judging.copy_check(loaded, drawings, copied, concept)
    assert check["nearest"][0] == mine[0]  # the drawing's nearest is itself
    assert check["restyle_pixel_distance"] > 0 and check["nearer_than_a_restyle"] == 0.5


def test_the_copy_check_of_a_concept_with_no_drawing_has_no_restyle(tiny_judge):
    from adgan.evaluation import judging

    loaded = judge.load_judge(tiny_judge)
    drawings = judging.real_drawings(loaded)
    unseen = len(loaded.concepts)  # a class no real drawing has
    check = judging.copy_check(loaded, drawings, drawings[0][:2], unseen)
    assert check["restyle_pixel_distance"] is None and check["nearer_than_a_restyle"] is None
    assert check["pixel_distance"] == pytest.approx(0.0, abs=1e-6)  # both are real drawings
