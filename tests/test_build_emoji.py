import csv
import os
import sys

import numpy as np
from PIL import Image

from conftest import ROOT, SHIPPED

sys.path.insert(0, os.path.join(ROOT, "data"))
import build_emoji  # noqa: E402


def shipped():
    with open(os.path.join(SHIPPED, "captions.csv"), encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_shipped_manifest_is_complete_and_bilingual():
    rows = shipped()
    assert list(rows[0]) == build_emoji.COLUMNS
    assert len(rows) == 2756 and {r["style"] for r in rows} == {"noto", "twemoji"}
    assert all(r["name_en"] and r["name_zh"] for r in rows)
    assert not {r["group"] for r in rows} & build_emoji.DROPPED_GROUPS
    held_out = sum(r["split"] == "test" for r in rows) / len(rows)
    assert 0.08 < held_out < 0.12


def test_shipped_images_are_64px_rgb_on_white():
    for row in shipped()[::50]:
        image = Image.open(os.path.join(SHIPPED, row["image"]))
        assert image.size == (64, 64) and image.mode == "RGB"
        corners = np.asarray(image)[[0, 0, -1, -1], [0, -1, 0, -1]]
        assert (corners > 240).all(), row["image"]


def test_gender_variants_share_a_split():
    splits = {}
    for row in shipped():
        cps = tuple(int(c, 16) for c in os.path.basename(row["image"])[:-4].split("-"))
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
