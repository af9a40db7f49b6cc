import json
import os

import numpy as np
import pytest
from PIL import Image, ImageDraw

from adgan import fonts, labels
from adgan.upsampling.upsampler import pil_lanczos_unsharp
from ads import creative
from conftest import assert_labelled

# they draw through the commands' main(): one load of each model file (conftest)
pytestmark = pytest.mark.usefixtures("shared_models")

LONG_ZH = "夏季新款连衣裙轻盈透气，限时特惠，全场包邮，" * 8  # 176 characters
LONG_EN = ("Lightweight breathable running shoes with extra cushioning for every day " * 3)[:200]


def product(size=16):
    rng = np.random.default_rng(0)
    image = np.full((size, size, 3), 255, np.uint8)
    image[4:12, 4:12] = rng.integers(0, 200, (8, 8, 3))
    return image


def inside(inner, outer):
    return (inner[0] >= outer[0] and inner[1] >= outer[1] and inner[2] <= outer[2]
            and inner[3] <= outer[3])


def disjoint(a, b):
    return a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


@pytest.mark.parametrize("size", sorted(creative.SIZES))
@pytest.mark.parametrize("template", creative.TEMPLATES)
def test_copy_and_ai_label_fit_their_boxes_and_never_overlap(size, template):
    boxes = creative.layout(template, creative.SIZES[size])
    width, height = creative.SIZES[size]
    for headline, price in (("红色连衣裙", "¥199"), (LONG_ZH, "¥1,299.00 包邮"),
                            (LONG_EN, "$29.99")):
        image, used = creative.compose(product(), creative.Copy(headline, price), template, size)
        assert image.size == creative.SIZES[size]
        # the visible label: in the copy's language, inside the picture, its text at least 5%
        # of the shortest side tall, clear of the product and of every copy box and its ink
        label = used["ai_label"]
        assert label["shown"] and label["text"] == ("AI生成" if headline != LONG_EN
                                                    else "AI-generated")
        assert inside(label["box"], (0, 0, width, height)) and inside(label["text_box"],
                                                                      label["box"])
        assert label["text_height"] >= 0.05 * min(width, height)
        for name in ("product", "headline", "price", "cta"):
            assert disjoint(label["box"], boxes[name]) and disjoint(label["box"], used[name]), name
        left, top, right, bottom = label["text_box"]
        ink = np.asarray(image)[top:bottom, left:right]
        assert (ink.max(-1) < 128).any()  # the text is really drawn there
        for name in ("headline", "price", "cta"):
            assert inside(used[name], boxes[name]), (name, used[name], boxes[name])
            assert disjoint(used[name], used["product"]), name
        assert inside(used["cta_text"], boxes["cta"])
        assert disjoint(used["headline"], used["price"])
        # short copy is never cut; only the small sizes may cut long copy, and only the headline
        if headline == "红色连衣裙" or size in ("1080x1080", "1200x628"):
            assert used["truncated"] == [], (headline[:10], used["truncated"])
        else:
            assert set(used["truncated"]) <= {"headline"}, used["truncated"]


def test_short_copy_is_not_cut_and_long_copy_is_cut_with_an_ellipsis():
    _, used = creative.compose(product(), creative.Copy("Running shoes", "$29"), "hero",
                               "1080x1080")
    assert used["truncated"] == []
    _, used = creative.compose(product(), creative.Copy(LONG_ZH), "hero", "300x250")
    assert "headline" in used["truncated"]


def test_wrap_breaks_chinese_by_character_and_english_by_word():
    draw = ImageDraw.Draw(Image.new("RGB", (10, 10)))
    font = fonts.load(20)
    lines = creative.wrap("running shoes for everyday training", font, 120, draw)
    assert all(draw.textlength(line, font=font) <= 120 for line in lines)
    assert " ".join(lines) == "running shoes for everyday training"
    lines = creative.wrap("夏季新款连衣裙轻盈透气", font, 100, draw)
    assert "".join(lines) == "夏季新款连衣裙轻盈透气" and len(lines) > 1


def test_bad_copy_is_a_clear_error():
    with pytest.raises(creative.CopyError, match="headline is empty"):
        creative.check_copy(creative.Copy("  "))
    with pytest.raises(creative.CopyError, match="headline is 201 characters; at most 200"):
        creative.check_copy(creative.Copy("x" * 201))
    with pytest.raises(creative.CopyError, match="cannot draw: 'สวัสดี'|cannot draw"):
        creative.check_copy(creative.Copy("red dress", cta="สวัสดี"))
    assert creative.check_copy(creative.Copy("红色连衣裙")).cta == "立即购买"
    assert creative.check_copy(creative.Copy("red dress")).cta == "Shop now"
    assert creative.drawable("red dress 🙂 สวัสดี") == "red dress"


def test_upscale_is_smooth_and_exact_size():
    checker = np.kron(np.indices((4, 4)).sum(0) % 2, np.ones((4, 4)))[..., None] * 255
    big = np.asarray(pil_lanczos_unsharp(np.repeat(checker, 3, -1).astype(np.uint8), 200))
    assert big.shape == (200, 200, 3)
    assert len(np.unique(big[:, :, 0])) > 20  # interpolated edges, not nearest-neighbour blocks


def test_sidecar_redraws_the_same_png(trained_run, tmp_path, capsys):
    paths = creative.main(["--run", trained_run, "--prompt", "red dress", "--headline",
                           "New red dress", "--price", "$29", "--seed", "5", "--size", "300x250",
                           "--template", "split", "--out-dir", str(tmp_path / "a")])
    sidecar = paths[0][:-4] + ".json"
    meta = json.load(open(sidecar, encoding="utf-8"))
    assert meta["prompt"] == "red dress" and meta["seed"] == 5 and meta["template"] == "split"
    assert meta["copy"] == {"headline": "New red dress", "price": "$29", "cta": "Shop now"}
    assert 0.0 <= meta["score"] <= 1.0
    assert meta["model"] == {"run": os.path.abspath(trained_run), "image_size": 16,
                             "upsampler": "lanczos"}
    # the product at the largest size the model gives, and what enlarged it
    assert meta["product_size"] == 64 and meta["product_upsampler"] == "lanczos"
    assert meta["layout"]["ai_label"]["text"] == "AI-generated"
    first = assert_labelled(paths[0], "AI-generated")
    assert meta["implicit_label"]["ProduceID"] == first["ProduceID"]
    again = creative.main(["--from-sidecar", sidecar, "--out-dir", str(tmp_path / "b")])
    # the same pixels; a new picture, so a new content id
    assert np.array_equal(np.asarray(Image.open(again[0])), np.asarray(Image.open(paths[0])))
    assert assert_labelled(again[0], "AI-generated")["ProduceID"] != first["ProduceID"]
    del meta["product_size"]  # a sidecar from before the up-sampler: the model's own size
    old = str(tmp_path / "old.json")
    json.dump(meta, open(old, "w", encoding="utf-8"))
    redrawn = creative.main(["--from-sidecar", old, "--out-dir", str(tmp_path / "old")])
    redrawn_meta = json.load(open(redrawn[0][:-4] + ".json", encoding="utf-8"))
    assert redrawn_meta["product_size"] == 16 and redrawn_meta["product_upsampler"] == "none"


def test_a_creative_without_the_visible_label_stays_without_it(trained_run, tmp_path):
    bare = creative.main(["--run", trained_run, "--prompt", "red dress", "--seed", "5", "--size",
                          "300x250", "--no-ai-label", "--out-dir", str(tmp_path / "bare")])
    bare_meta = json.load(open(bare[0][:-4] + ".json", encoding="utf-8"))
    assert bare_meta["layout"]["ai_label"] == {"shown": False}
    assert bare_meta["implicit_label"]["ExplicitLabel"] == "off"
    assert not labels.check(bare[0])["ok"] and labels.check(bare[0])["explicit"] == "off"
    redrawn_bare = creative.main(["--from-sidecar", bare[0][:-4] + ".json", "--out-dir",
                                  str(tmp_path / "bare2")])  # off stays off
    assert labels.check(redrawn_bare[0])["explicit"] == "off"


def test_product_size_and_bad_prompts_or_copy(trained_run, tmp_path, capsys):
    small = creative.main(["--run", trained_run, "--prompt", "red dress", "--product-size", "32",
                           "--size", "300x250", "--out-dir", str(tmp_path / "d")])
    assert json.load(open(small[0][:-4] + ".json", encoding="utf-8"))["product_size"] == 32
    with pytest.raises(SystemExit) as exit_info:
        creative.main(["--run", trained_run, "--prompt", "qqqq zzzz", "--out-dir",
                       str(tmp_path / "c")])
    assert exit_info.value.code == 1 and "names no product" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        creative.main(["--run", trained_run, "--prompt", "dress", "--headline", " ",
                       "--out-dir", str(tmp_path / "c")])
    assert "headline is empty" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "c")


def test_language_follows_the_han_characters():
    assert creative.language("红色 dress") == "zh" and creative.language("red dress") == "en"
    assert creative.language("\U00020000") == "zh"  # an extension-B character
