"""Write `data/shop/emoji_names.csv`: the names the PyPI `emoji` package (2.16.0) gives the
catalogue's products besides their CLDR names, for the prompt reader (understanding.py).

The package names each emoji in English (":running_shoe:"), with aliases (":athletic_shoe:",
":iphone:", ":school_satchel:") and in Chinese (":跑鞋:"). Every such name of a product of
`data/emoji/captions.csv` (found by the emoji of its images' file names) that is not
already one of its CLDR names becomes a row `term,product,relation` ("athletic shoe,running
shoe,same"); one that is a CLDR keyword of another product too ("shoe") is left out.
Usage: python data/build_shop_names.py (with `pip install -e ".[build]"`).
"""

import csv
import os
import re
import sys

DATA = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(DATA))
from adgan.helpers import atomic_path  # noqa: E402

CAPTIONS = os.path.join(DATA, "emoji", "captions.csv")
OUT = os.path.join(DATA, "shop", "emoji_names.csv")


def spoken(name):
    """":athletic_shoe:" -> "athletic shoe"; "" for a name of symbols alone."""
    words = re.sub(r"[_:]+", " ", name).strip()
    return words if re.search(r"\w", words) else ""


def plain(name):
    """A name as the reader matches it, near enough: lower case, "-" and "’" as spaces."""
    return " ".join(re.sub(r"[-’'_]", " ", name.lower()).split())


def emoji_names(char):
    """Every name and alias the `emoji` package gives `char`, English then Chinese."""
    import emoji  # imported lazily: only this build needs it

    emoji.config.load_language("zh")
    entry = emoji.EMOJI_DATA.get(char) or emoji.EMOJI_DATA.get(char + "\ufe0f") or {}
    names = [entry.get("en", ""), *entry.get("alias", []), entry.get("zh", "")]
    return [spoken(name) for name in names if spoken(name)]


def rows(captions=CAPTIONS):
    """(term, product, "same") rows for every product of the manifest, in its order; a name
    that is a CLDR keyword of another product too ("shoe") names none."""
    with open(captions, encoding="utf-8", newline="") as f:
        manifest = list(csv.DictReader(f))
    keyword_of = {}
    for row in manifest:
        for cell in (row["keywords_en"], row["keywords_zh"]):
            for word in cell.split("|"):
                keyword_of.setdefault(plain(word), set()).add(row["name_en"])
    found, seen = [], set()
    for row in manifest:
        product = row["name_en"]
        stem = os.path.splitext(os.path.basename(row["image"]))[0]
        if product in seen or not re.fullmatch(r"[0-9a-f]{4,6}(-[0-9a-f]{4,6})*", stem):
            continue
        seen.add(product)
        char = "".join(chr(int(code, 16)) for code in stem.split("-"))
        known = {plain(product), row["name_zh"]}
        for term in dict.fromkeys(emoji_names(char)):
            if plain(term) not in known and keyword_of.get(plain(term), {product}) == {product}:
                found.append((term, product, "same"))
    return found


def main():
    with atomic_path(OUT) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["term", "product", "relation"])
        writer.writerows(rows())
    print(f"build_shop_names: wrote {OUT}")


if __name__ == "__main__":
    main()
