"""Prompt understanding (adgan/text/understanding.py): reading prompts as shops write them,
with the shipped catalogue and vocabulary (no model is loaded: the lexicon needs only the
manifest and the vocabulary), and giving a drawing the asked colour."""

import csv
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from adgan.data import colors
from adgan.runs.layout import load_config
from adgan.runs.rows import row_filter
from adgan.text import lexicon, understanding
from adgan.text.tokenizer import load_vocabulary
from adgan.helpers import CHECKOUT
import data_loader

SHIPPED = os.path.join(CHECKOUT, "models", "adgan")


@pytest.fixture(scope="module")
def catalogue():
    """The shipped release's catalogue products (every product of its groups)."""
    config = load_config(SHIPPED)
    frame = data_loader.read_manifest(config.manifest, config.image_column,
                                      tuple(config.caption_columns), None, row_filter(config))
    vocabulary = load_vocabulary(os.path.join(SHIPPED, "final", "vocabulary.txt"))
    return lexicon.catalogue_products(frame, vocabulary)


@pytest.fixture(scope="module")
def reader(catalogue):
    style_words = {"fluent-3d": ("3d", "立体"), "noto": ("noto", "谷歌")}
    return understanding.PromptReader(lexicon.build_lexicon(
        catalogue, lexicon.read_synonyms(), lexicon.read_shop_words(),
        style_words, lexicon.read_heads()))


def read(reader, prompt):
    return reader.read([prompt])[0]


@pytest.mark.parametrize("prompt, drawn_as, ignored", [
    ("限时特惠！新款冬季加厚黑色羽绒服 男女同款", "coat (nearest kin of 羽绒服) · black",
     "限时特惠 新款 冬季 加厚 男女同款"),
    ("黑色羽绒服", "coat (nearest kin of 羽绒服) · black", ""),
    ("白色运动鞋", "running shoe · white", ""),
    ("运动鞋 男", "running shoe", "男"),
    ("Fresh hot coffee ☕ and strawberry shortcake, 50% off today", "hot beverage + shortcake",
     "fresh 50 off today"),
    ("汉堡加薯条套餐", "hamburger + french fries", "套餐"),
    ("一杯咖啡和一块蛋糕", "hot beverage + shortcake", "一杯 一块"),
    ("紫色T恤", "t-shirt · purple", ""),
    ("pink dress", "dress · pink", ""),
    ("orange dress", "dress · orange", ""),  # a colour word that is also a product
    ("网红 连衣裙", "dress", "网红"),  # 红 inside another word is no colour
    ("黑羽绒服", "coat (nearest kin of 羽绒服) · black", ""),  # one-character colour
    ("红苹果", "red apple", ""),  # a product name with a colour in it
    ("立体 红色连衣裙", "dress · red · 3d style", ""),
    ("☕", "hot beverage", ""),  # an emoji is a name too
    ("👗 新款", "dress", "新款"),
    ("手机壳 iPhone 15 硅胶 防摔", "mobile phone", "15 硅胶防摔"),  # the head: iphone
    ("Apple watch", "watch", "apple"),  # the head is last
    ("mobile phone top rated", "mobile phone", "top rated"),  # "top" (top hat) is a term
    ("iconic running shoe, flash sale", "running shoe", "iconic flash sale"),  # no bundle
])
def test_reads_shop_prompts(reader, prompt, drawn_as, ignored):
    reading = read(reader, prompt)
    assert reading["drawable"] and reading["found"]
    assert (reading["drawn_as"], reading["ignored"]) == (drawn_as, ignored)


@pytest.mark.parametrize("prompt, product", [
    ("lipstick", "lipstick"), ("sneakers", "running shoe"), ("heels", "high-heeled shoe"),
    ("smartphone", "mobile phone"), ("latte", "hot beverage (nearest kin of latte)"),
    ("cheeseburger", "hamburger"), ("red wine", "wine glass"), ("女包", "handbag"),
    ("双肩包", "backpack"), ("球鞋", "running shoe"), ("trainers", "running shoe"),
    ("夹克", "coat"), ("风衣", "coat")])
def test_synonyms_find_the_catalogue_product(reader, prompt, product):
    assert read(reader, prompt)["drawn_as"] == product


def test_text_drawn_is_the_drawable_name(reader):
    """The model draws its products by their names (a held-out product whose English name is
    out of the vocabulary by its Chinese one); bundles joined by "and", the style first."""
    texts = [r["text"] for r in reader.read(["lipstick", "限时特惠！黑色羽绒服", "汉堡加薯条",
                                             "立体 连衣裙"])]
    assert texts == ["口红", "coat", "hamburger and french fries", "3d dress"]


def test_every_catalogue_product_is_found_by_its_names(reader, catalogue):
    """No refusal of a product the model can draw: every product of the bank, held-out ones
    included, is found by its English and its Chinese name (the zero-refusal bar)."""
    names = [(p.english, p.english) for p in catalogue] + [
        (p.chinese, p.english) for p in catalogue if p.chinese]
    readings = reader.read([name for name, _ in names])
    missed = [name for (name, product), r in zip(names, readings)
              if r["drawn_as"].split(" (")[0].split(" · ")[0] != product]
    # names that are also another product's name, or a colour and nothing else
    assert len(missed) <= 0.01 * len(names), missed


@pytest.mark.parametrize("prompt", ["限时特惠 包邮", "<script>alert(1)</script>", "50% off!!!",
                                    "x" * 10_000, "\x00\x07\x1b[31m", "   "])
def test_a_prompt_naming_no_product_is_not_drawable(reader, prompt):
    reading = read(reader, prompt)
    assert not reading["drawable"] and reading["drawn_as"] == ""
    line = understanding.describe_refusal(prompt, reading)
    assert "names no product" in line and "\n" not in line and len(line) < 300


@pytest.mark.parametrize("prompt, drawn_as, ignored", [
    ("老爹鞋 男", "running shoe (nearest kin of …鞋)", "老爹 男"),  # the compound's head
    ("派克服", "coat (nearest kin of …服)", "派 克"),  # not 派 (a pie) inside a word
    ("raincoat", "coat (nearest kin of raincoat)", ""),  # an English compound's ending
    ("jogging shoes", "running shoe (nearest kin of shoes)", "jogging")])
def test_head_words_read_compounds_the_lexicon_lacks(reader, prompt, drawn_as, ignored):
    reading = read(reader, prompt)
    assert (reading["drawn_as"], reading["ignored"]) == (drawn_as, ignored)


def test_unknown_product_words_are_drawn_from_the_words(catalogue):
    """A catalogue without a coat draws 羽绒服 from its words, and says so."""
    reader = understanding.PromptReader(lexicon.build_lexicon(
        [p for p in catalogue if p.english != "coat"], lexicon.read_synonyms(),
        lexicon.read_shop_words()))
    reading = read(reader, "新款黑色羽绒服")
    assert reading["drawable"] and not reading["found"]
    assert reading["text"] == "羽绒服" and reading["colors"][0] == 7
    assert reading["drawn_as"] == "the words “羽绒服” (no catalogue product named)"


def test_reader_runs_in_a_graph(reader):
    """The served graph reads alike (tf.function, the batch's rows independent)."""
    prompts = ["黑色羽绒服", "lipstick", "汉堡加薯条套餐"]
    traced = tf.function(lambda text: reader(text))(tf.constant(prompts))
    eager = reader(tf.constant(prompts[::-1]))
    assert [t.decode() for t in traced["text"].numpy()] == [
        t.decode() for t in eager["text"].numpy()[::-1]]
    assert traced["colors"].numpy()[0, 0] == colors.BLACK


def test_lexicon_tables_name_catalogue_products(catalogue):
    """Every row of the synonym table names a product of the shipped catalogue in its
    exact spelling (a typo would silently drop the row), with a known relation; the emoji
    package's names are what `data/build_shop_names.py` writes."""
    names = {p.english for p in catalogue}
    rows = lexicon.read_synonyms([lexicon.SYNONYMS_FILE])
    assert len(rows) >= 500
    assert [term for term, product, _ in rows if product not in names] == []
    assert {relation for *_, relation in rows} == {"same", "kin"}
    words = lexicon.read_shop_words()
    assert len(words) == len(set(words)) and not set(words) & {t for t, *_ in rows}
    assert {product for _, product in lexicon.read_heads()} <= names
    sys.path.insert(0, os.path.join(CHECKOUT, "data"))
    import build_shop_names
    assert [tuple(row) for row in build_shop_names.rows()] == lexicon.read_synonyms(
        [lexicon.EMOJI_NAMES_FILE])


def test_shop_colours_extend_the_palette():
    """The palette's eight colours come first, with its words, so a colour the model was
    trained on keeps its number."""
    for index, (english, chinese, *_) in enumerate(colors.PALETTE):
        assert colors.SHOP_COLORS[index][0][0] == english
        assert colors.SHOP_COLORS[index][1][0] == chinese


def test_recolor_drawings_keeps_white_and_shading():
    """The product (what is not near white) takes the colour with its shading; the white
    ground stays white; -1 leaves a drawing as drawn."""
    image = np.full((2, 8, 8, 3), 255, np.uint8)
    image[:, 2:6, 2:6] = [200, 40, 40]
    image[:, 2:6, 4:6] = [100, 20, 20]  # the darker half of the product
    out = colors.recolor_drawings(tf.constant(image), tf.constant([8, -1])).numpy()
    white = colors.SHOP_COLORS.index(next(c for c in colors.SHOP_COLORS if c[0][0] == "white"))
    assert white == 8
    np.testing.assert_array_equal(out[1], image[1])
    assert (out[0, 0, 0] == 255).all()
    light, dark = out[0, 3, 2].astype(int), out[0, 3, 5].astype(int)
    assert light.min() > 170 and np.ptp(light) < 15  # white-ish, no hue
    assert dark.mean() < light.mean()  # the shading is kept
    blue = colors.recolor_drawings(tf.constant(image[:1]), tf.constant([4])).numpy()[0, 3, 2]
    assert blue[2] > blue[0] and blue[2] > blue[1]


def test_shop_data_states_its_sources():
    """data/shop/README.md names where each table comes from."""
    readme = open(os.path.join(lexicon.SHOP_WORDS_DIR, "README.md"), encoding="utf-8").read()
    for name in ("synonyms.csv", "words.csv"):
        assert name in readme
    with open(lexicon.SYNONYMS_FILE, encoding="utf-8", newline="") as f:
        assert next(csv.reader(f)) == ["term", "product", "relation"]
