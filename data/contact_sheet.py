"""Draw the shipped set's contact sheet: product concepts (rows) x drawing styles (columns).

Usage:  python data/contact_sheet.py [--manifest data/emoji/captions.csv] [--out docs/emoji_styles.png]

A style without a drawing of a concept leaves its cell empty (grey cross), as the
manifest has no row for it.
"""

import argparse
import csv
import os
import sys

from PIL import Image, ImageDraw, ImageFont

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from adgan.helpers import save_png  # noqa: E402

CONCEPTS = ("dress", "t-shirt", "jeans", "high-heeled shoe", "running shoe", "handbag", "watch",
            "mobile phone", "laptop", "hot beverage", "shortcake", "hamburger")
CELL = 96
LABEL_WIDTH = 150
HEADER = 40


def contact_sheet(manifest, concepts=CONCEPTS, cell=CELL):
    """The sheet as a PIL image: a row per concept, a column per style (`styles.csv` order)."""
    with open(manifest, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    table = os.path.join(os.path.dirname(os.path.abspath(manifest)), "styles.csv")
    order = []
    if os.path.exists(table):  # the styles table's order, then any style it lacks
        with open(table, encoding="utf-8") as f:
            order = [r["style"] for r in csv.DictReader(f)]
    styles = list(dict.fromkeys(order + [r["style"] for r in rows]))
    styles = [s for s in styles if any(r["style"] == s for r in rows)]
    images = {(r["name_en"], r["style"]): r["image"] for r in rows}
    missing = [c for c in concepts if not any((c, s) in images for s in styles)]
    if missing:
        raise SystemExit(f"contact_sheet: {manifest} has no concept named {', '.join(missing)}")
    sheet = Image.new("RGB", (LABEL_WIDTH + cell * len(styles), HEADER + cell * len(concepts)),
                      "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=15)
    for column, style in enumerate(styles):
        draw.text((LABEL_WIDTH + column * cell + cell // 2, HEADER // 2), style, fill="black",
                  font=font, anchor="mm")
    root = os.path.dirname(os.path.abspath(manifest))
    for row, concept in enumerate(concepts):
        top = HEADER + row * cell
        draw.text((8, top + cell // 2), concept, fill="black", font=font, anchor="lm")
        for column, style in enumerate(styles):
            left = LABEL_WIDTH + column * cell
            if (concept, style) in images:
                with Image.open(os.path.join(root, images[concept, style])) as image:
                    sheet.paste(image.convert("RGB").resize((cell, cell), Image.Resampling.LANCZOS),
                                (left, top))
            else:
                draw.line((left + 30, top + 30, left + cell - 30, top + cell - 30), fill="#ccc")
                draw.line((left + 30, top + cell - 30, left + cell - 30, top + 30), fill="#ccc")
    return sheet


def main(argv=None):
    """Write the contact sheet PNG; returns its path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", default=os.path.join(ROOT, "data", "emoji", "captions.csv"))
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "emoji_styles.png"))
    args = parser.parse_args(argv)
    save_png(contact_sheet(args.manifest), args.out)
    print(f"contact_sheet: wrote {args.out}")
    return args.out


if __name__ == "__main__":
    main()
