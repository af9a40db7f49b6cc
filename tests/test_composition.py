"""Bundle prompts drawn product by product and composed side by side (composition.py)."""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from adgan.drawing import composition, sampling
from adgan.drawing.calibrate import load_gate
from adgan.runs.artifacts import load_model, load_splitter
import generate

# they draw through the commands' main(): one load of each model file (conftest)
pytestmark = pytest.mark.usefixtures("shared_models")

STYLE_WORDS = {"fluent-3d": ("3d", "立体"), "noto": ("noto", "谷歌")}
NAMES = ["face with tears of joy", "bow and arrow", "cup with straw", "弓和箭", "hot beverage"]
# "a" and "咖" are too short to count as product words on their own
WORDS = ["咖啡", "蛋糕", "汉堡", "薯条", "外套", "面包", "一杯奶", "coffee", "cake", "burger", "fries", "pencil",
         "a", "咖"]


@pytest.fixture(scope="module")
def splitter():
    return composition.BundleSplitter(NAMES, WORDS, STYLE_WORDS)


def parts_of(splitter, texts):
    """Each text's parts, checking the index and count columns on the way."""
    parts, rows, index, count = (t.numpy() for t in splitter(tf.constant(texts)))
    grouped = [[] for _ in texts]
    for part, row, place in zip(parts, rows, index):
        assert place == len(grouped[row])
        grouped[row].append(part.decode())
    assert list(count) == [len(grouped[row]) for row in rows]
    return grouped


@pytest.mark.parametrize("text, expected", [
    ("一杯咖啡和一块蛋糕", ["咖啡", "蛋糕"]),               # counts go: products are taught by name
    ("coffee and cake", ["coffee", "cake"]),
    ("a burger with fries", ["burger", "fries"]),
    ("汉堡配薯条", ["汉堡", "薯条"]),
    ("面包和一杯奶", ["面包", "一杯奶"]),            # a count that is part of a product's name
    ("coffee, cake & burger", ["coffee", "cake", "burger"]),
    ("立体 咖啡和蛋糕", ["立体 咖啡", "立体 蛋糕"]),         # the style word styles every part
    ("3d burger with noto fries", ["3d burger", "noto fries"]),  # unless a part names its own
    ("pencil and cup with straw", ["pencil", "cup with straw"]),  # strong connectors first
    ("face with tears of joy", ["face with tears of joy"]),       # a taught name is one product
    ("3d bow and arrow", ["3d bow and arrow"]),
    ("弓和箭", ["弓和箭"]),
    ("暖和的外套", ["暖和的外套"]),        # 和 inside a word: "暖" names no product
    ("保暖加绒外套", ["保暖加绒外套"]),
    ("咖和a", ["咖和a"]),                   # too short to be product words
    ("coffee and cake and burger and fries", ["coffee and cake and burger and fries"]),  # > 3
    ("hot beverage", ["hot beverage"]),
    ("", [""]),
])
def test_splits_bundles_and_leaves_everything_else_whole(splitter, text, expected):
    assert parts_of(splitter, [text]) == [expected]


def test_splits_a_batch_row_by_row(splitter):
    assert parts_of(splitter, ["coffee and cake", "弓和箭", "汉堡和薯条"]) == [
        ["coffee", "cake"], ["弓和箭"], ["汉堡", "薯条"]]


def test_compose_places_parts_side_by_side_and_joins_their_scores():
    colours = [(200, 0, 0), (0, 0, 200), (0, 150, 0)]
    images = np.stack([np.full((32, 32, 3), c, np.uint8) for c in colours])
    layout = {"row": tf.constant([0, 0, 1], tf.int64), "index": tf.constant([0, 1, 0]),
              "count": tf.constant([2, 2, 1]), "batch": tf.constant(2)}
    out = composition.join_results(
        {"images": tf.constant(images), "score": tf.constant([0.3, 0.6, 0.9]),
         "accepted": tf.constant([True, False, True]), "tries": tf.constant([2, 3, 1])}, layout)
    bundle, single = out["images"].numpy()
    # count 2 at 32 px: boxes of 15 px from x = 0 and x = 15, from y = 8
    assert tuple(bundle[16, 7]) == colours[0] and tuple(bundle[16, 22]) == colours[1]
    assert (bundle[2, 2] == 255).all() and (bundle[16, 31] == 255).all()
    np.testing.assert_array_equal(single, images[2])  # one product: its picture unchanged
    np.testing.assert_allclose(out["score"].numpy(), [0.3, 0.9])
    assert out["accepted"].numpy().tolist() == [False, True]
    assert out["tries"].numpy().tolist() == [5, 1]


def test_a_bundle_is_its_products_drawn_alone_and_composed(trained_run):
    gan, gate = load_model(trained_run), load_gate(trained_run)
    composed = sampling.GatedSampler(gan, gate, splitter=load_splitter(trained_run))(
        ["dress and pizza", "jeans"], [5, 5], [4, 4])
    alone = sampling.GatedSampler(gan, gate)(
        ["dress", "pizza", "jeans"], [5, 5 + composition.PART_SEED_STEP, 5], [4, 4, 4])
    layout = {"row": tf.constant([0, 0, 1], tf.int64), "index": tf.constant([0, 1, 0]),
              "count": tf.constant([2, 2, 1]), "batch": tf.constant(2)}
    expected = composition.join_results({k: tf.constant(v) for k, v in alone.items()}, layout)
    for name, value in expected.items():
        np.testing.assert_array_equal(composed[name], value.numpy())
    np.testing.assert_array_equal(composed["images"][1], alone["images"][2])
    assert composed["tries"][0] >= 2


def test_generate_composes_unless_told_not_to(trained_run, tmp_path, capsys):
    common = ["--run", trained_run, "-n", "1", "--size", "16", "--no-gate", "dress and pizza"]
    composed = generate.main([*common, "--out-dir", str(tmp_path / "composed")])
    whole = generate.main([*common, "--out-dir", str(tmp_path / "whole"), "--no-compose"])
    pictures = [np.asarray(tf.io.decode_png(tf.io.read_file(f[0]))) for f in (composed, whole)]
    assert (pictures[0][:3] == 255).all()  # products shrunk into their boxes: white above
    assert not np.array_equal(*pictures)
    assert "one pass" not in capsys.readouterr().err


def test_a_run_whose_manifest_is_gone_draws_bundles_in_one_pass(trained_run, tmp_path, capsys):
    run = str(tmp_path / "run")
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("checkpoints", "logs"))
    with open(os.path.join(run, "config.json"), encoding="utf-8") as f:
        settings = json.load(f)
    settings["manifest"] = str(tmp_path / "gone.csv")
    with open(os.path.join(run, "config.json"), "w", encoding="utf-8") as f:
        json.dump(settings, f)
    assert load_splitter(run) is None
    generate.main(["--run", run, "-n", "1", "--size", "16", "--no-gate", "--out",
                   str(tmp_path / "grid.png"), "dress and pizza"])
    assert "drawn in one pass" in capsys.readouterr().err
