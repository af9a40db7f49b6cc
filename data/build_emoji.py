"""Rebuild the shipped product-emoji set (`data/emoji/`) from pinned public packages.

Sources (nothing is installed system-wide: Debian packages are unpacked into a
temporary folder with `apt-get download` + `dpkg-deb -x`, npm packages fetched as
tarballs with `npm pack` and read in place):
  * eight drawing styles, one npm package each (`emoji_styles.STYLES`: Noto, Twemoji,
    Fluent 3D / colour / flat, OpenMoji, Firefox OS, EmojiOne v1), SVGs rendered with
    PyPI `resvg-py`
  * Debian `unicode-data`       -> emoji-test.txt (groups, subgroups, fully-qualified
                                   list) and UnicodeData.txt (character names)
  * Debian `unicode-cldr-core`  -> English and Chinese names ("tts") and keywords
  * PyPI `emoji`                -> Chinese names that CLDR lacks

Usage:  python data/build_emoji.py [--out data/emoji] [--size 128] [--debs DIR] [--packages DIR]
(in the project's environment with `pip install -e ".[build]"`; it writes files with
the project's `helpers`). `--size 256 --out DIR` builds a larger copy (not committed).

Each image is cropped to its drawing, centred on a white square with a margin, and
Lanczos-resized to `--size`, then written as a PNG recompressed losslessly by oxipng
(PyPI `pyoxipng`; the same pixels in about 12% fewer bytes, so the set fits its 100 MB
budget). The output is deterministic: the same package versions give the same bytes. The set is built in a temporary folder beside `--out` and swapped
in only when complete; any failure stops with one line and leaves `--out` untouched.
"""

import argparse
import csv
import glob
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from emoji_styles import (STYLES, SHARED_CHARS, BuildError, concept_key,  # noqa: E402
                          fetch_packages, open_style)
from adgan.helpers import atomic_path  # noqa: E402

DEBIAN_PACKAGES = ("unicode-cldr-core", "unicode-data")
DROPPED_GROUPS = {"Component", "Flags", "Symbols"}
SKIN_TONES = {0x1F3FB, 0x1F3FC, 0x1F3FD, 0x1F3FE, 0x1F3FF}
# Codepoints that only vary gender inside one concept ("man cook", "woman cook",
# "cook"); removed to build the group key that keeps such variants on one split side.
GENDER_PARTS = {0x2640, 0x2642, 0x200D, 0xFE0F, 0x1F468, 0x1F469, 0x1F9D1, 0x1F466, 0x1F467}
IMAGE_SIZE = 128
MARGIN = 0.06  # of the drawing's longer side, on every side
HELD_OUT_FRACTION = 0.1
OXIPNG_LEVEL = 2  # oxipng's preset: higher levels took 5x longer for under 1% fewer bytes
COLUMNS = ["image", "style", "group", "subgroup", "name_en", "name_zh",
           "keywords_en", "keywords_zh", "split"]
STYLE_COLUMNS = ["style", "title", "package", "version", "license", "word_en", "word_zh", "images"]


def fetch_debian_packages(work_dir):
    """Download and unpack the Debian packages into `work_dir`; return the root."""
    debs = os.path.join(work_dir, "debs")
    os.makedirs(debs, exist_ok=True)
    try:
        subprocess.run(["apt-get", "download", *DEBIAN_PACKAGES], cwd=debs, check=True,
                       capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as error:
        raise BuildError(f"cannot fetch Debian packages {', '.join(DEBIAN_PACKAGES)} "
                         f"with apt-get download: {getattr(error, 'stderr', '') or error}".strip())
    return unpack_debs(debs, os.path.join(work_dir, "root"))


def unpack_debs(debs_dir, root):
    """Unpack every .deb in `debs_dir` into `root` (no system install)."""
    files = sorted(glob.glob(os.path.join(debs_dir, "*.deb")))
    if not files:
        raise BuildError(f"no .deb files in {debs_dir}")
    for deb in files:
        try:
            subprocess.run(["dpkg-deb", "-x", deb, root], check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError) as error:
            raise BuildError(f"cannot unpack {deb}: {error}")
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


def parse_unicode_names(path):
    """{codepoint: 'AUTOMATED TELLER MACHINE'} from UnicodeData.txt."""
    names = {}
    for line in open(path, encoding="utf-8"):
        fields = line.split(";")
        if len(fields) > 1 and not fields[1].startswith("<"):
            names[int(fields[0], 16)] = fields[1]
    return names


def emoji_package_zh_name(char):
    """Chinese name from the PyPI `emoji` package, or '' when it has none."""
    import emoji  # imported lazily: only the build needs it

    emoji.config.load_language("zh")
    entry = emoji.EMOJI_DATA.get(char) or emoji.EMOJI_DATA.get(char + "\ufe0f") or {}
    return entry.get("zh", "").strip(":").replace("_", " ")


def square_on_white(rgba, size=IMAGE_SIZE, margin=MARGIN):
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


def read_concepts(root):
    """The kept emoji with their names, keywords and split, in emoji-test order."""
    unicode_dir = os.path.join(root, "usr/share/unicode")
    cldr = os.path.join(unicode_dir, "cldr/common")
    for required in (f"{unicode_dir}/emoji/emoji-test.txt", f"{unicode_dir}/UnicodeData.txt",
                     f"{cldr}/annotations/en.xml", f"{cldr}/annotations/zh.xml"):
        if not os.path.exists(required):
            raise BuildError(f"{required} missing from the unpacked Debian packages")
    en = parse_cldr([f"{cldr}/annotations/en.xml", f"{cldr}/annotationsDerived/en.xml"])
    zh = parse_cldr([f"{cldr}/annotations/zh.xml", f"{cldr}/annotationsDerived/zh.xml"])
    unicode_names = parse_unicode_names(f"{unicode_dir}/UnicodeData.txt")
    concepts = []
    for cps, group, subgroup, test_name in parse_emoji_test(f"{unicode_dir}/emoji/emoji-test.txt"):
        char = "".join(map(chr, cps))
        key = char.replace("\ufe0f", "")
        name_en, kw_en = en.get(key, ("", []))
        name_en = name_en or test_name
        name_zh, kw_zh = zh.get(key, ("", []))
        name_zh = name_zh or emoji_package_zh_name(char)
        if not name_en or not name_zh:
            print(f"build_emoji: skipping {char} ({key.encode('unicode_escape')}): no en/zh name")
            continue
        bare = [c for c in cps if c != 0xFE0F]
        concepts.append(dict(
            cps=cps, key=concept_key(cps), group=group, subgroup=subgroup,
            name_en=name_en, name_zh=name_zh,
            keywords_en=" | ".join(kw_en), keywords_zh=" | ".join(kw_zh),
            # the names a names-only icon set may use for it (`emoji_styles.name_index`)
            names=[unicode_names.get(bare[0], "") if len(bare) == 1 else "", test_name, name_en]))
    assign_splits(concepts)
    return concepts


def render_styles(concepts, packages, work, out_dir, size):
    """Write every concept in every style that has it; return (manifest rows, counts)."""
    sources = {}
    # Fluent colour borrows Fluent flat's codepoint table, so it is opened last.
    for style in sorted(STYLES, key=lambda s: s.match == "shared-chars"):
        shared = sources[SHARED_CHARS][0].chars if style.match == "shared-chars" else {}
        sources[style.style] = open_style(style, packages, work, concepts, shared)
    rows, counts = [], {style.style: 0 for style in STYLES}
    for concept in concepts:
        stem = "-".join(f"{c:04x}" for c in concept["cps"])
        for style in STYLES:
            source, index = sources[style.style]
            name = index.get(concept["key"])
            if name is None:
                continue  # this style has no drawing of the concept: no row
            image = square_on_white(source.render(name, 2 * size), size)
            if image is None:
                raise BuildError(f"{style.package} {name}: the drawing is empty")
            rel = f"{style.style}/{stem}.png"
            write_png(image, os.path.join(out_dir, rel))
            rows.append([rel, style.style] + [concept[c] for c in COLUMNS[2:]])
            counts[style.style] += 1
    return rows, counts


def png_bytes(image):
    """A PIL image as PNG bytes, recompressed losslessly by oxipng (same pixels)."""
    import oxipng  # a build extra, like the rasteriser

    encoded = io.BytesIO()
    image.save(encoded, format="PNG")
    return oxipng.optimize_from_memory(encoded.getvalue(), level=OXIPNG_LEVEL)


def write_png(image, path):
    """`png_bytes` of `image` written to `path` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        file.write(png_bytes(image))


def write_csv(path, columns, rows):
    """A UTF-8 CSV with a header, `\n` line ends, written atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)


def build(root, packages, out_dir, size=IMAGE_SIZE):
    """Build the images, `captions.csv` and `styles.csv` into `out_dir` (an empty folder);
    returns (manifest rows, images per style)."""
    concepts = read_concepts(root)
    for style in STYLES:
        os.makedirs(os.path.join(out_dir, style.style), exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        rows, counts = render_styles(concepts, packages, work, out_dir, size)
    write_csv(os.path.join(out_dir, "captions.csv"), COLUMNS, rows)
    write_csv(os.path.join(out_dir, "styles.csv"), STYLE_COLUMNS,
              [[s.style, s.title, s.package, s.version, s.license, s.word_en, s.word_zh,
                counts[s.style]] for s in STYLES])
    return rows, counts


def report(rows, counts, size, out):
    """Print what was built, per style with its package version."""
    n_test = sum(r[-1] == "test" for r in rows)
    concepts = len({r[0].split("/")[1] for r in rows})
    print(f"build_emoji: {concepts} concepts, {len(rows)} images at {size}x{size} "
          f"({n_test} held out) -> {out}")
    for style in STYLES:
        print(f"  {style.style:12s} {counts[style.style]:5d}  {style.package}@{style.version}")


def replace_folder(new, out):
    """Swap the finished `new` folder in as `out` (the old one is removed after)."""
    old = f"{out}.old"
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(out):
        os.rename(out, old)
    os.rename(new, out)
    shutil.rmtree(old, ignore_errors=True)


def main(argv=None):
    """Build the set into a temporary folder beside `--out`, then swap it in."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "emoji"))
    parser.add_argument("--size", type=int, default=IMAGE_SIZE, help="image side in pixels")
    parser.add_argument("--debs", help="folder with the Debian .deb files already downloaded")
    parser.add_argument("--packages", help="folder for the npm tarballs (fetched there if missing)")
    args = parser.parse_args(argv)
    if args.size < 8:
        parser.error(f"--size must be at least 8, got {args.size}")
    out = os.path.abspath(args.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".build-", dir=os.path.dirname(out))
    try:
        with tempfile.TemporaryDirectory() as work:
            root = (unpack_debs(args.debs, os.path.join(work, "root")) if args.debs
                    else fetch_debian_packages(work))
            packages = fetch_packages(args.packages or os.path.join(work, "npm"))
            rows, counts = build(root, packages, staging, args.size)
        replace_folder(staging, out)
        report(rows, counts, args.size, out)
    except BuildError as error:
        shutil.rmtree(staging, ignore_errors=True)
        sys.exit(f"build_emoji: {error}; {out} left unchanged")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


if __name__ == "__main__":
    main()
