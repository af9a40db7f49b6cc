import numpy as np
import pytest
import tensorflow as tf

from adgan.data import styles
from adgan.text import tokenizer
from conftest import shipped_rows, write_manifest
import data_loader

WORDS = {"fluent-3d": ("3d", "立体"), "fluent-flat": ("flat", "扁平")}


def test_style_prompt_uses_the_prompt_language_and_accepts_words():
    assert styles.style_prompt("handbag", "fluent-3d", WORDS) == "3d handbag"
    assert styles.style_prompt("红色连衣裙", "fluent-3d", WORDS) == "立体 红色连衣裙"
    assert styles.style_prompt("handbag", "Flat", WORDS) == "flat handbag"
    assert styles.style_prompt("手提包", "扁平", WORDS) == "扁平 手提包"
    with pytest.raises(styles.StyleError, match="unknown style 'pixel'.*fluent-3d \\(3d / 立体\\)"):
        styles.style_prompt("handbag", "pixel", WORDS)
    with pytest.raises(styles.StyleError, match="trained without style words"):
        styles.style_prompt("handbag", "3d", {})


def test_add_style_word_matches_style_prompt():
    for text in ("handbag", "红色连衣裙", "咖啡 and cake"):
        got = styles.add_style_word(tf.constant(text), tf.constant("3d"), tf.constant("立体"))
        assert got.numpy().decode() == styles.style_prompt(text, "fluent-3d", WORDS)
    unnamed = styles.add_style_word(tf.constant("handbag"), tf.constant(""), tf.constant(""))
    assert unnamed.numpy().decode() == "handbag"


def test_vary_style_walks_through_every_style_seed_by_seed():
    words = {**WORDS, "noto": ("noto", "谷歌")}
    texts = ["handbag"] * 3 + ["红色连衣裙"] * 3
    varied = [t.decode() for t in styles.vary_style(texts, [5, 6, 7] * 2, words).numpy()]
    assert {t.split()[0] for t in varied[:3]} == {"3d", "flat", "noto"}
    assert {t.split()[0] for t in varied[3:]} == {"立体", "扁平", "谷歌"}
    assert [t.split()[1] for t in varied] == ["handbag"] * 3 + ["红色连衣裙"] * 3
    again = styles.vary_style(texts, [5, 6, 7] * 2, words).numpy()
    assert [t.decode() for t in again] == varied  # a seed always picks the same style
    named = ["3D handbag", "a Flat shoe", "立体手提包", "notorious bag"]
    kept = [t.decode() for t in styles.vary_style(named, [0, 1, 2, 3], words).numpy()]
    assert kept[:3] == named[:3] and kept[3].endswith(" notorious bag")  # a word, not a prefix
    assert [t.decode() for t in styles.vary_style(texts, [0] * 6, {}).numpy()] == texts


def test_consecutive_seeds_do_not_draw_one_style_family_back_to_back():
    names = ["emojione", "fluent", "fluent-3d", "fluent-flat", "fxemoji", "noto", "openmoji",
             "twemoji"]  # the shipped set's styles: three of them are Microsoft's Fluent
    words = {name: (f"en{i}", f"中{i}") for i, name in enumerate(names)}
    assert [styles.style_stride(n) for n in (1, 2, 3, 6, 8, 9)] == [1, 1, 1, 5, 3, 4]
    for prompt in ("handbag", "连衣裙", "running shoe"):
        drawn = [t.decode().split()[0] for t in
                 styles.vary_style([prompt] * 8, np.arange(8) + 40, words).numpy()]
        assert sorted(drawn) == sorted(w for w, _ in words.values()) or \
            sorted(drawn) == sorted(z for _, z in words.values())  # all eight, once each
        fluent = [names[int(w[-1])].startswith("fluent") for w in drawn]
        assert all(sum(fluent[(k + j) % 8] for j in range(4)) <= 2 for k in range(8))


def test_the_styles_table_is_read_beside_the_manifest(tmp_path):
    manifest = write_manifest(str(tmp_path / "a"), shipped_rows(4), style_words=True)
    words = styles.read_style_words(manifest)
    assert words["fluent-3d"] == ("3d", "立体") and words["fluent-flat"] == ("flat", "扁平")
    assert data_loader.read_style_words(manifest, ("noto",)) == {"noto": words["noto"]}
    assert styles.read_style_words(write_manifest(str(tmp_path / "b"), shipped_rows(4))) == {}
    (tmp_path / "a" / "styles.csv").write_text("style,word_en,word_zh\nnoto,noto,\n")
    with pytest.raises(data_loader.ManifestError, match="styles.csv: line 2 needs"):
        data_loader.read_style_words(manifest)


def test_the_loader_names_the_style_in_about_half_the_captions(tmp_path):
    rows = shipped_rows(8, ("dress", "jeans", "pizza", "hamburger"), ("fluent-3d", "noto"))
    manifest = write_manifest(str(tmp_path), rows, style_words=True)
    examples, _ = data_loader.load_examples(manifest, 16)
    assert set(examples["style"]) == {"fluent-3d", "noto"}
    words = data_loader.read_style_words(manifest)
    vocabulary = tokenizer.examples_vocabulary(examples, 100, style_words=words)
    assert {"3d", "立", "体", "noto"} <= set(vocabulary)

    batches = list(data_loader.make_dataset(examples, 16, 8, seed=1, style_words=words,
                                            repeat=True).take(25))
    texts = [t.decode() for b in batches for t in b["text"].numpy()]
    names = [s.decode() for b in batches for s in b["style"].numpy()]
    named = [t.split()[0] in words[s] for t, s in zip(texts, names)]
    assert 0.35 < np.mean(named) < 0.65, texts  # 200 draws of rate 0.5

    plain = next(iter(data_loader.make_dataset(examples, 16, 8, seed=1, shuffle=False)))
    assert not any(t.decode().startswith(("3d", "立体", "noto")) for t in plain["text"].numpy())
    vectorizer = tokenizer.make_text_vectorizer(vocabulary, 8)
    batch = next(iter(data_loader.make_dataset(examples, 16, 8, shuffle=False, style_words=words,
                                               vectorizer=vectorizer)))
    assert set(batch) == {"token_ids", "images", "style_id", "concept_id", "product_id"}
    ids = {s: i for i, s in enumerate(sorted(words))}
    assert batch["style_id"].numpy().tolist() == [ids[s] for s in examples["style"]]
