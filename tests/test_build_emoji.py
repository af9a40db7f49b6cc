import csv
import io
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, SHIPPED

sys.path.insert(0, os.path.join(ROOT, "data"))
import build_emoji  # noqa: E402
import emoji_styles  # noqa: E402

PRODUCT_GROUPS = ("Food & Drink", "Objects")


def read_csv(name):
    with open(os.path.join(SHIPPED, name), encoding="utf-8") as f:
        return list(csv.DictReader(f))


SHIPPED_ROWS = read_csv("captions.csv")


def concept(row):
    return os.path.basename(row["image"])[:-4]


def test_shipped_manifest_is_complete_and_bilingual():
    assert list(SHIPPED_ROWS[0]) == build_emoji.COLUMNS
    assert {r["style"] for r in SHIPPED_ROWS} == {s.style for s in emoji_styles.STYLES}
    assert all(r["name_en"].strip() and r["name_zh"].strip() for r in SHIPPED_ROWS)
    assert not {r["group"] for r in SHIPPED_ROWS} & build_emoji.DROPPED_GROUPS
    held_out = sum(r["split"] == "test" for r in SHIPPED_ROWS) / len(SHIPPED_ROWS)
    assert 0.08 < held_out < 0.12


def test_every_shipped_image_exists_and_is_128px_opaque():
    for row in SHIPPED_ROWS:  # RGB, or palette / grey where oxipng found that lossless
        with Image.open(os.path.join(SHIPPED, row["image"])) as image:
            assert image.size == (128, 128) and image.mode in ("RGB", "P", "L"), row["image"]
            assert "transparency" not in image.info, row["image"]
    for row in SHIPPED_ROWS[::97]:  # a sample decoded in full: drawn on white
        image = np.asarray(Image.open(os.path.join(SHIPPED, row["image"])).convert("RGB"))
        corners = image[[0, 0, -1, -1], [0, -1, 0, -1]]
        assert (corners > 240).all() and image.min() < 200, row["image"]


def test_shipped_images_are_the_bytes_the_build_writes():
    """What the build writes (oxipng over Pillow's PNG) is the shipped file, byte for byte,
    for a sample, and it decodes to the very pixels it was given."""
    pytest.importorskip("oxipng", reason="the recompressor is a build extra: pip install -e .[build]")
    for row in SHIPPED_ROWS[::211]:
        path = os.path.join(SHIPPED, row["image"])
        with Image.open(path) as image:
            rgb = image.convert("RGB")
        written = build_emoji.png_bytes(rgb)
        assert written == open(path, "rb").read(), row["image"]
        with Image.open(io.BytesIO(written)) as again:
            assert np.array_equal(np.asarray(again.convert("RGB")), np.asarray(rgb))


def test_held_out_concepts_are_held_out_in_every_style():
    splits = {}
    for row in SHIPPED_ROWS:
        splits.setdefault(concept(row), set()).add(row["split"])
    assert all(len(s) == 1 for s in splits.values())
    train = {concept(r) for r in SHIPPED_ROWS if r["split"] == "train"}
    test = {concept(r) for r in SHIPPED_ROWS if r["split"] == "test"}
    assert train and test and not train & test


def test_most_product_concepts_come_in_six_styles_or_more():
    styles = {}
    for row in SHIPPED_ROWS:
        if row["group"] in PRODUCT_GROUPS:
            styles.setdefault(concept(row), set()).add(row["style"])
    rich = sum(len(s) >= 6 for s in styles.values()) / len(styles)
    assert len(styles) > 350 and rich >= 0.8, rich


def test_the_styles_table_matches_the_manifest_and_the_pins():
    table = read_csv("styles.csv")
    assert list(table[0]) == build_emoji.STYLE_COLUMNS
    counts = {}
    for row in SHIPPED_ROWS:
        counts[row["style"]] = counts.get(row["style"], 0) + 1
    for row, style in zip(table, emoji_styles.STYLES):
        assert (row["style"], row["package"], row["version"], row["license"]) == \
            (style.style, style.package, style.version, style.license)
        assert int(row["images"]) == counts[style.style]
        assert row["word_en"] and row["word_zh"]
    words = [w for row in table for w in (row["word_en"], row["word_zh"])]
    assert len(set(words)) == len(words)  # every word asks for one style


def test_gender_variants_share_a_split():
    splits = {}
    for row in SHIPPED_ROWS:
        cps = tuple(int(c, 16) for c in concept(row).split("-"))
        splits.setdefault(build_emoji.group_key(cps), set()).add(row["split"])
    assert all(len(s) == 1 for s in splits.values())
    # "cook", "man cook" and "woman cook" share one key
    assert build_emoji.group_key((0x1F9D1, 0x200D, 0x1F373)) == \
        build_emoji.group_key((0x1F468, 0x200D, 0x1F373)) == "1f373"


def test_square_on_white_crops_pads_and_resizes():
    glyph = Image.new("RGBA", (100, 40), (0, 0, 0, 0))
    glyph.paste((255, 0, 0, 255), (10, 10, 90, 30))
    square = np.asarray(build_emoji.square_on_white(glyph, size=32))
    assert square.shape == (32, 32, 3)
    assert (square[0, 0] == 255).all() and square[16, 16, 0] > 200 > square[16, 16, 1]


def test_names_only_sets_match_exact_names_and_give_up_on_shared_ones():
    icon_set = {"icons": {"redapple": {}, "automobile": {}, "cat": {}},
                "aliases": {"auto": {"parent": "automobile"}}}
    concepts = [dict(key="1f34e", names=["", "red apple", "red apple"]),
                dict(key="1f697", names=["AUTOMOBILE", "automobile", "car"]),
                dict(key="1f408", names=["CAT", "cat", "cat"]),
                dict(key="1f431", names=["CAT FACE", "cat face", "cat"]),  # claims "cat" too
                dict(key="1f34f", names=["", "green apple", "green apple"])]  # no "apple" guess
    style = next(s for s in emoji_styles.STYLES if s.match == "unicode-name")
    assert emoji_styles.name_index(icon_set, concepts, style) == {"1f34e": "redapple",
                                                                 "1f697": "automobile"}
    slugged = {"icons": {"red-apple": {}}, "aliases": {"apple-red": {"parent": "red-apple",
                                                                      "hFlip": True}}}
    style = next(s for s in emoji_styles.STYLES if s.match == "cldr-slug")
    assert emoji_styles.name_index(slugged, concepts, style) == {"1f34e": "red-apple"}


def test_concept_keys_ignore_the_variation_selector():
    assert emoji_styles.concept_key((0x2615, 0xFE0F)) == "2615"
    assert emoji_styles.concept_key((0x1F9D1, 0x200D, 0x1F373)) == "1f9d1-200d-1f373"
    assert emoji_styles.tarball_name(emoji_styles.STYLES[2]) == "lobehub-fluent-emoji-3d-1.1.0.tgz"


def test_an_svg_that_fails_to_render_names_the_icon(tmp_path):
    pytest.importorskip("resvg_py", reason="the rasteriser is a build extra: pip install -e .[build]")
    source = emoji_styles.IconifySource.__new__(emoji_styles.IconifySource)
    source.icons = {"prefix": "broken", "width": 16, "height": 16,
                    "icons": {"cup": {"body": '<path d="M0 0h16v16z"/>'},
                              "bad": {"body": "<g><path d="}}}
    source.name = "broken"
    assert source.render("cup", 32).size == (32, 32)
    with pytest.raises(emoji_styles.BuildError, match="broken:bad"):
        source.render("bad", 32)
    with pytest.raises(emoji_styles.BuildError, match="broken:gone is named in chars.json"):
        source.render("gone", 32)


def test_a_package_that_cannot_be_fetched_is_named(tmp_path, monkeypatch):
    def no_registry(command, **kwargs):
        raise subprocess.CalledProcessError(1, command, stderr="npm error 404 Not Found")

    monkeypatch.setattr(subprocess, "run", no_registry)
    with pytest.raises(emoji_styles.BuildError,
                       match="cannot fetch npm package @iconify-json/noto@1.2.9: npm error 404"):
        emoji_styles.fetch_packages(str(tmp_path), emoji_styles.STYLES[:1])


def test_a_failed_build_leaves_the_set_untouched(tmp_path, capsys):
    out = tmp_path / "emoji"
    out.mkdir()
    (out / "captions.csv").write_text("the committed set\n")
    empty = tmp_path / "debs"
    empty.mkdir()
    with pytest.raises(SystemExit) as stop:
        build_emoji.main(["--out", str(out), "--debs", str(empty), "--packages", str(tmp_path)])
    assert str(stop.value) == f"build_emoji: no .deb files in {empty}; {out} left unchanged"
    assert (out / "captions.csv").read_text() == "the committed set\n"
    assert sorted(os.listdir(tmp_path)) == ["debs", "emoji"]  # no staging folder left


def test_the_contact_sheet_has_a_row_per_concept_and_a_column_per_style():
    import contact_sheet

    manifest = os.path.join(SHIPPED, "captions.csv")
    sheet = contact_sheet.contact_sheet(manifest, ("handbag", "laptop"), cell=32)
    assert sheet.size == (contact_sheet.LABEL_WIDTH + 8 * 32, contact_sheet.HEADER + 2 * 32)
    with pytest.raises(SystemExit, match="no concept named unicorn handbag"):
        contact_sheet.contact_sheet(manifest, ("unicorn handbag",))


def test_the_data_folder_is_within_its_100_mb_budget():
    """What `du -sm data` counts: allocated blocks, in MiB."""
    allocated = sum(os.stat(os.path.join(folder, name)).st_blocks * 512
                    for folder, _, names in os.walk(os.path.join(ROOT, "data")) for name in names)
    assert allocated / 2**20 <= 100, f"data/ is {allocated / 2**20:.1f} MiB"
