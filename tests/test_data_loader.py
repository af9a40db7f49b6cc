import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from adgan import helpers
from adgan.data import bundles
from adgan.text import tokenizer
from conftest import shipped_rows, write_manifest
import data_loader


def tokens(text):
    return [t.decode() for t in tf.strings.split(
        tokenizer.standardize_text(tf.constant([text]))).flat_values.numpy()]


def test_standardizer_splits_han_and_keeps_latin_words():
    assert tokens("黑色羽绒服") == ["黑", "色", "羽", "绒", "服"]
    assert tokens("Running Shoes!") == ["running", "shoes"]
    assert tokens("红色 T恤 sale") == ["红", "色", "t", "恤", "sale"]
    assert tokens("咖啡，and cake。") == ["咖", "啡", "and", "cake"]
    assert tokens("") == [] and tokens("   ") == []


def test_vectorizer_maps_known_unknown_and_pads():
    vocabulary = tokenizer.build_vocabulary(["红色 dress", "red dress", "红"], 100)
    assert vocabulary[:2] == ["dress", "红"]  # most frequent first
    vectorizer = tokenizer.make_text_vectorizer(vocabulary, 6)
    ids = vectorizer(tf.constant(["红色 dress", "", "蓝 shirt", "red red red red red red red"]))
    ids = ids.numpy()
    assert ids.shape == (4, 6)
    assert list(ids[0][:3]) == [3, vocabulary.index("色") + 2, 2] and ids[0][3] == 0
    assert not ids[1].any()                      # empty -> all padding
    assert list(ids[2][:2]) == [1, 1]            # unknown tokens -> 1
    assert (ids[3] == vocabulary.index("red") + 2).all()  # truncated to 6
    assert list(tokenizer.count_known_tokens(vectorizer, ["红 dress", "蓝"])) == [2, 0]


def test_vocabulary_file_round_trip(tmp_path):
    vocabulary = ["红", "dress", "t"]
    tokenizer.save_vocabulary(vocabulary, str(tmp_path / "v.txt"))
    assert tokenizer.load_vocabulary(str(tmp_path / "v.txt")) == vocabulary


def test_manifest_caption_columns_become_alternatives(tiny_manifest):
    frame = data_loader.read_manifest(tiny_manifest)
    assert len(frame) == 12 and all(os.path.isabs(p) for p in frame["path"])
    dress = [c for c in frame["captions"] if c[0] == "dress"][0]
    assert dress == ["dress", "连衣裙", "clothing | dress", "衣服 | 连衣裙"]


def test_split_and_column_filters(tiny_manifest):
    everything = data_loader.read_manifest(tiny_manifest)
    noto = data_loader.read_manifest(tiny_manifest, filters={"style": ["noto"], "group": []})
    assert len(noto) == len(everything) // 2 and all("noto" in p for p in noto["path"])
    food = data_loader.read_manifest(tiny_manifest, split="train",
                                     filters={"group": ["Food & Drink"]})
    assert 0 < len(food) < len(everything)
    with pytest.raises(data_loader.ManifestError, match="missing column.*colour"):
        data_loader.read_manifest(tiny_manifest, filters={"colour": ["red"]})


def test_bad_rows_are_skipped_counted_and_listed(tmp_path):
    folder = tmp_path / "data"
    rows = shipped_rows(4)
    bad = [dict(rows[0], image="missing.png"),
           dict(rows[0], image="corrupt.png"),
           dict(rows[0], image="truncated.png"),
           dict(rows[1], name_en="", name_zh="", keywords_en="", keywords_zh=""),
           dict(rows[0], image="rgba.png"), dict(rows[0], image="gray.png"),
           dict(rows[0], image="palette.png"), dict(rows[0], image="photo.jpg"),
           dict(rows[0], image="photo.webp")]
    path = write_manifest(str(folder), rows + bad)
    (folder / "corrupt.png").write_bytes(b"not a png at all")
    png = (folder / "img" / os.listdir(folder / "img")[0]).read_bytes()
    (folder / "truncated.png").write_bytes(png[: len(png) // 2])
    Image.new("RGBA", (40, 30), (255, 0, 0, 0)).save(folder / "rgba.png")
    Image.new("L", (64, 64), 128).save(folder / "gray.png")
    Image.new("P", (64, 64), 3).save(folder / "palette.png")
    Image.new("RGB", (80, 80), (0, 0, 255)).save(folder / "photo.jpg")
    Image.new("RGB", (50, 70), (0, 255, 0)).save(folder / "photo.webp")

    examples, report = data_loader.load_examples(path, 16)
    assert report["rows"] == 13 and report["usable"] == 9 and report["skipped"] == 4
    reasons = {os.path.basename(b["file"]): b["reason"] for b in report["bad_rows"]}
    assert reasons["missing.png"] == "missing file"
    assert reasons["corrupt.png"].startswith("undecodable image")
    assert reasons["truncated.png"].startswith("undecodable image")
    assert "empty text" in reasons.values()
    # Transparent pixels become white; every mode decodes to RGB.
    assert (data_loader.load_image(str(folder / "rgba.png"), 16) == 255).all()
    assert data_loader.load_image(str(folder / "gray.png"), 16).shape == (16, 16, 3)
    report_path = str(tmp_path / "report.json")
    helpers.write_json(report, report_path)
    assert json.load(open(report_path))["skipped"] == 4


def test_unusable_manifests_stop_with_one_line_errors(tmp_path, tiny_manifest):
    with pytest.raises(data_loader.ManifestError, match="manifest not found"):
        data_loader.read_manifest(str(tmp_path / "nope.csv"))
    no_caption = tmp_path / "m.csv"
    no_caption.write_text("image,title\na.png,x\n")
    with pytest.raises(data_loader.ManifestError, match=r"m\.csv: missing column\(s\) name_en"):
        data_loader.read_manifest(str(no_caption))
    all_bad = tmp_path / "bad.csv"
    all_bad.write_text("image,caption\nmissing.png,red dress\n")
    with pytest.raises(data_loader.ManifestError, match="no usable row"):
        data_loader.load_examples(str(all_bad), 16, caption_columns=("caption",))


def test_jsonl_manifest(tmp_path, tiny_manifest):
    frame = data_loader.read_manifest(tiny_manifest)
    path = tmp_path / "m.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for p, captions in zip(frame["path"], frame["captions"]):
            f.write(json.dumps({"file": p, "text": captions[1]}, ensure_ascii=False) + "\n")
    examples, report = data_loader.load_examples(str(path), 16, "file", ("text",))
    assert report["usable"] == 12 and ["连衣裙"] in list(examples["captions"])


def test_dataset_shapes_ranges_and_determinism(tiny_manifest):
    examples, _ = data_loader.load_examples(tiny_manifest, 16)

    def first_batch(seed):
        batch = next(iter(data_loader.make_dataset(examples, 16, 4, seed=seed)))
        return batch["text"].numpy(), batch["images"].numpy()

    texts, images = first_batch(3)
    assert images.shape == (4, 16, 16, 3) and images.dtype == np.float32
    assert -1.0 <= images.min() and images.max() <= 1.0 and images.max() > 0.9
    again_texts, again_images = first_batch(3)
    assert (texts == again_texts).all() and np.array_equal(images, again_images)
    assert not np.array_equal(first_batch(4)[1], images)


def test_tfds_builder_works_offline(tmp_path, tiny_manifest):
    from adgan.data import tfds_emoji

    builder = tfds_emoji.AdganEmoji(manifest=tiny_manifest, data_dir=str(tmp_path / "tfds"))
    builder.download_and_prepare()
    example = next(iter(builder.as_dataset(split="train")))
    assert example["image"].shape == (128, 128, 3)
    assert builder.info.splits["train"].num_examples == 12


def test_colour_augmentation_adds_recoloured_copies_with_colour_words(tiny_manifest):
    from adgan.data import colors

    examples, report = data_loader.load_examples(tiny_manifest, 16,
                                                 recolorable={"subgroup": ["clothing"]})
    recolorable = examples["recolorable"].to_numpy()
    names = [c[0] for c in examples["captions"]]
    assert report["recolorable"] == recolorable.sum() > 0
    assert all(r == (n in ("dress", "jeans")) for r, n in zip(recolorable, names))
    dataset = data_loader.make_dataset(examples, 16, 1, seed=0, shuffle=False, color_augment=2)
    batches = list(dataset)
    assert len(batches) == len(examples) + 2 * recolorable.sum()
    plain_texts = [b["text"].numpy()[0].decode("utf-8") for b in batches[:len(examples)]]
    assert not any(colors.mentions_color(t) for t in plain_texts)
    for batch in batches[len(examples):]:
        text = batch["text"].numpy()[0].decode("utf-8")
        color = [k for k, (en, zh, *_) in enumerate(colors.PALETTE)
                 if text.startswith(en + " ") or text.startswith(zh)]
        assert len(color) == 1, text
        image = helpers.to_uint8(batch["images"].numpy())
        assert colors.dominant_color(image)[0] == color[0], text
    with pytest.raises(data_loader.ManifestError, match="missing column\\(s\\) category"):
        data_loader.load_examples(tiny_manifest, 16, recolorable={"category": ["shoes"]})


def test_recolor_filter_needs_a_subgroup_column(tmp_path, tiny_manifest):
    assert data_loader.recolor_filter(tiny_manifest, ("clothing",), 1) == {
        "subgroup": ["clothing"]}
    assert data_loader.recolor_filter(tiny_manifest, ("clothing",), 0) is None
    own = tmp_path / "shop.csv"
    own.write_text("image,title\na.png,black coat\n")
    assert data_loader.recolor_filter(str(own), ("clothing",), 1) is None
    jsonl = tmp_path / "shop.jsonl"
    jsonl.write_text('{"image": "a.png", "title": "coat", "subgroup": "clothing"}\n')
    assert data_loader.recolor_filter(str(jsonl), ("clothing",), 1) == {"subgroup": ["clothing"]}


def test_concept_ids_join_the_renderings_of_one_product(tiny_manifest):
    examples, _ = data_loader.load_examples(tiny_manifest, 16,
                                            recolorable={"subgroup": ["clothing"]})
    names = [c[0] for c in examples["captions"]]
    _, columns = data_loader.epoch_rows(examples, 1, {})
    concept_ids, is_copy, product_ids = columns[7], columns[2], columns[8]
    plain = concept_ids[~is_copy]
    # noto and twemoji renderings of one name share an id; different names never do
    assert all((plain[i] == plain[j]) == (names[i] == names[j])
               for i in range(len(names)) for j in range(len(names)))
    copies = concept_ids[is_copy]
    assert len(copies) > 0 and len(set(copies)) == len(copies)  # each recoloured copy alone
    assert not set(copies) & set(plain)
    # a copy keeps its product: the exemplar bank's drawings of it (exemplars.bank_arrays)
    np.testing.assert_array_equal(product_ids[~is_copy], plain)
    assert set(product_ids[is_copy]) <= set(plain)
    dataset = data_loader.make_dataset(examples, 16, 4, seed=0, shuffle=False)
    assert next(iter(dataset))["concept_id"].numpy().tolist() == plain[:4].tolist()


def bundle_batches(manifest, count, skip=0):
    """`count` batches of 4 with a quarter of bundles, from the start or after `skip`."""
    examples, _ = data_loader.load_examples(manifest, 16)
    source = data_loader.bundle_source(examples, 16, seed=3)
    dataset = data_loader.make_dataset(examples, 16, 4, seed=3, repeat=True, skip=skip,
                                       bundles=source, bundle_share=0.25)
    return [{k: v.numpy() for k, v in b.items()} for b in dataset.take(count)]


def test_a_share_of_examples_are_composed_bundles_and_a_resume_skips_exactly(tiny_manifest):
    batches = bundle_batches(tiny_manifest, 6)
    ids = np.concatenate([b["concept_id"] for b in batches])
    texts = [t.decode("utf-8") for b in batches for t in b["text"]]
    is_bundle = ids >= bundles.BUNDLE_ID_BASE
    assert is_bundle.sum() == 6  # exactly a quarter of 24 examples, at fixed positions
    for text in np.array(texts, dtype=object)[is_bundle]:
        assert any(c in text for c in ("和", "与", "配", "加", " and ", " with ", " & ")), text
    assert len(set(ids[is_bundle])) == 6  # each bundle is its own contrastive class
    assert all(b["images"].shape == (4, 16, 16, 3) for b in batches)
    resumed = bundle_batches(tiny_manifest, 2, skip=16)  # after 4 batches
    for expected, got in zip(batches[4:], resumed):
        np.testing.assert_array_equal(expected["images"], got["images"])
        np.testing.assert_array_equal(expected["text"], got["text"])


def test_an_opaque_palette_png_reads_as_its_rgb_original(tmp_path):
    """The shipped drawings are palette PNGs where that is lossless (oxipng): without a
    transparency entry they are opaque, so the background gets alpha 0 as in the RGB file."""
    rgb = np.full((32, 32, 3), 255, np.uint8)
    rgb[8:24, 8:24] = (200, 30, 40)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "p.png")
    palette = data_loader.load_image_rgba(str(tmp_path / "p.png"), 16)
    np.testing.assert_array_equal(palette, data_loader.load_image_rgba(str(tmp_path / "rgb.png"), 16))
    assert palette[0, 0, 3] == 0 and palette[8, 8, 3] == 255
