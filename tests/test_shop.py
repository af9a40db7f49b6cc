"""The shop-language benchmark (adgan/evaluation/shop.py, `python evaluate.py shop`)."""

import csv
import os
import shutil

import numpy as np
import tensorflow as tf

from adgan.data import colors
from adgan.evaluation import shop
from adgan.text import lexicon
import evaluate


def test_benchmark_is_reproducible_and_sized():
    """At least 300 prompts in the five classes, both languages where the issue asks for
    them, each labelled with a product; the same seed gives the same set."""
    prompts = shop.benchmark_prompts(0)
    assert prompts == shop.benchmark_prompts(0) != shop.benchmark_prompts(1)
    assert len(prompts) >= 300
    found = {(p["class"], p["language"]) for p in prompts}
    assert found == {("title", "zh"), ("ad copy", "en"), ("query", "zh"), ("query", "en"),
                     ("colour", "zh"), ("colour", "en"), ("synonym", "zh"), ("synonym", "en")}
    products = {row["product"] for row in shop.read_table("products")}
    assert all(p["product"] in products | {"watch", "umbrella"} for p in prompts)
    assert all(p["color"] for p in prompts if p["class"] == "colour")
    assert all("{" not in p["prompt"] and p["prompt"] == p["prompt"].strip() for p in prompts)


def test_benchmark_words_are_not_the_readers():
    """The benchmark's synonyms and phrases are none of the reader's table entries (its
    synonyms and shop words), so it measures generalisation, not lookup."""
    reader_words = {t.lower() for t, *_ in lexicon.read_synonyms()}
    reader_words |= {w.lower() for w in lexicon.read_shop_words()}
    synonyms = {row["term"].lower() for row in shop.read_table("synonyms")}
    phrases = {row["phrase"].lower() for row in shop.read_table("phrases")}
    assert not synonyms & reader_words and not phrases & reader_words


def test_color_check_reads_recoloured_drawings():
    """`obeys_color` sees a drawing recoloured to a colour as that colour and not another."""
    image = np.full((1, 32, 32, 3), 255, np.uint8)
    image[0, 6:26, 6:26] = [40, 160, 60]
    image[0, 6:26, 16:26] = [20, 90, 30]
    for name in ("white", "navy", "gold", "pink", "black", "brown"):
        drawn = colors.recolor_drawings(tf.constant(image),
                                        tf.constant([shop.color_number(name)])).numpy()[0]
        assert shop.obeys_color(drawn, name), name
    assert not shop.obeys_color(image[0], "red") and shop.obeys_color(image[0], "green")
    assert not shop.obeys_color(np.full((32, 32, 3), 255, np.uint8), "white")  # nothing drawn


def tiny_benchmark(folder):
    """The benchmark's tables with the tiny run's products (the tiny judge knows them)."""
    shutil.copytree(shop.BENCHMARK_DIR, folder)
    with open(os.path.join(folder, "products.csv"), "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["product", "en", "zh"])
        writer.writerows([["dress", "dress", "连衣裙"], ["pizza", "pizza", "披萨"],
                          ["hamburger", "hamburger", "汉堡"]])
    with open(os.path.join(folder, "synonyms.csv"), "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([["term", "product", "language"], ["裙装", "dress", "zh"],
                                 ["cheeseburgers", "hamburger", "en"]])
    return folder


def test_evaluate_shop_writes_its_report(trained_run, tiny_judge, tmp_path, monkeypatch,
                                         capsys):
    """`python evaluate.py shop` on a small benchmark through a tiny run (it draws about 50
    pictures of a 16 px model: the one test that runs the whole measurement): every class
    has the read, as written and plain-name rows, ratios and refusals, the colour class its
    obedience and ceiling, each prompt its reading; json, md, the prompts as read and the
    panel are written."""
    folder = tiny_benchmark(str(tmp_path / "benchmark"))
    counts = {"title": 2, "ad copy": 2, "query": 2, "colour": 2, "synonym": 2}
    monkeypatch.setattr(shop, "BENCHMARK_DIR", folder)
    monkeypatch.setattr(shop, "CLASSES", counts)
    monkeypatch.setattr(shop, "PANEL", (("title", "zh", 1),))
    out = str(tmp_path / "reports" / "shop.json")  # a folder not there yet
    report = evaluate.main(["shop", "--run", trained_run, "--judge", tiny_judge, "--out", out,
                            "--max-tries", "1", "--repeats", "1", "--no-held-out"])
    section = report["shop"]
    assert section["prompts"] == sum(counts.values()) and len(report["panel"]) == 1
    for name in counts:
        row = section["classes"][name]["all"]
        assert {"read", "as written", "plain name", "ratio", "ratio as written"} <= set(row)
        assert 0.0 <= row["read"]["top1"] <= 1.0
    assert "color_obeyed" in section["classes"]["colour"]["all"]["read"]
    assert 0.0 <= section["colour ceiling"]["color_obeyed"] <= 1.0
    for suffix in (".json", ".md", ".csv", "_panel.png"):
        assert os.path.exists(str(tmp_path / "reports" / "shop") + suffix), suffix
    with open(str(tmp_path / "reports" / "shop.csv"), encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(counts.values()) and all(r["drawn_as"] or r["refused"] == "True"
                                                     for r in rows)
    assert "| title |" in capsys.readouterr().out
