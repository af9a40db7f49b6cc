"""The prompt reader's lexicon (understanding.py): what it knows of products, colours, styles
and the words that name none of them, built once from the run's catalogue and data/shop/.

Keys are runs of reader tokens (`reader_text`: a Han character, an emoji, a Latin word
each) joined by one space. Sources, strongest first: each catalogue product's English and
Chinese names and its emoji (from its images' file names); the shop synonym table and the
`emoji` package's names (data/shop/synonyms.csv, emoji_names.csv); the catalogue's caption
terms that belong to one product alone (CLDR keywords); plurals. data/shop/words.csv names
the words that are none of them, data/shop/heads.csv the head characters of compounds,
`colors.SHOP_COLORS` the colours, the run its style words.
"""

import csv
import dataclasses
import os
import re

import numpy as np
import tensorflow as tf

from adgan.data import colors
from adgan.helpers import CHECKOUT, has_han
from adgan.text.tokenizer import MAX_TEXT_CHARACTERS, checked_utf8, standardize_text

SHOP_WORDS_DIR = os.path.join(CHECKOUT, "data", "shop")
SYNONYMS_FILE = os.path.join(SHOP_WORDS_DIR, "synonyms.csv")
EMOJI_NAMES_FILE = os.path.join(SHOP_WORDS_DIR, "emoji_names.csv")  # build_shop_names.py
WORDS_FILE = os.path.join(SHOP_WORDS_DIR, "words.csv")
HEADS_FILE = os.path.join(SHOP_WORDS_DIR, "heads.csv")
CONNECTOR = "\ue000"  # what , / + & 、 ; become: a token of its own (private use, no P or S)
CONNECTOR_WORDS = (CONNECTOR, "and", "with", "plus", "和", "与", "加", "配", "及")
LONGEST_KEY = 8  # tokens: longer lexicon keys are left out
# Columns of the entry table: the product a key names (-1: none), whether it is the kin of a
# product the catalogue lacks, its colour (-1), style (-1), and flags: a word that names none
# of them, a connector, a token of some product key, a colour read only before a product;
# the product a head word names (-1: none; `heads`); last, whether the key is only a caption
# term (weak: CLDR keywords such as "top" of the top hat or "flash" of the camera with flash
# give way to a name or a synonym in the prompt).
PRODUCT, KIN, COLOR, STYLE, FILLER, CONNECTS, WORD, NEEDS_PRODUCT, HEAD, WEAK = range(10)
COLUMNS = 10
# Where a key comes from, strongest first: a name beats a synonym beats a caption term.
NAME, SYNONYM, TERM, VARIANT = range(4)


def reader_text(texts):
    """Prompts (string tensor) -> text whose whitespace-split tokens the reader matches:
    cleaned as `tokenizer.standardize_text` cleans (control and format characters, length,
    case), connectors made one token, emoji and Han characters a token each, other
    punctuation and symbols spaces."""
    text = tf.strings.regex_replace(checked_utf8(texts), r"\p{Cc}", " ")
    text = tf.strings.regex_replace(text, r"[\p{Cf}\x{FE0F}\x{FE0E}]", "")
    text = tf.strings.substr(text, 0, MAX_TEXT_CHARACTERS, unit="UTF8_CHAR")
    text = tf.strings.lower(text)
    text = tf.strings.regex_replace(text, r"<[^<>]*>", " ")  # markup pasted with the copy
    text = tf.strings.regex_replace(text, r"[,，/+＋&、;；|｜]", f" {CONNECTOR} ")
    text = tf.strings.regex_replace(text, r"[\p{P}\p{Sm}\p{Sc}\p{Sk}]", " ")
    return tf.strings.regex_replace(text, r"(\p{Han}|\p{So})", r" \1 ")


def lexicon_keys(texts):
    """Python strings -> their reader tokens joined by one space ("T-shirt" -> "t shirt",
    "羽绒服" -> "羽 绒 服"), the form the lexicon's keys take."""
    if not texts:
        return []
    joined = tf.strings.reduce_join(tf.strings.split(reader_text(tf.constant(list(texts)))),
                                    axis=-1, separator=" ")
    return [key.decode("utf-8") for key in joined.numpy()]


def shown(key):
    """A key as a person writes it: no spaces between Han characters ("羽 绒 服" -> 羽绒服)."""
    return re.sub(r"(?<=[^\x00-\x7f]) (?=[^\x00-\x7f])", "", key)


@dataclasses.dataclass
class Product:
    """A catalogue product as the lexicon needs it: `english` its name (shown), `chinese`
    its Chinese name, `terms` the caption terms that belong to it alone, `emoji` its emoji
    characters, `drawn` the text the model draws it from."""

    english: str
    chinese: str = ""
    terms: tuple = ()
    emoji: tuple = ()
    drawn: str = ""


@dataclasses.dataclass
class Lexicon:
    """What `PromptReader` reads with: keys [E] (`lexicon_keys` form), entries int32 [E, 10]
    (the columns PRODUCT ... WEAK), the products' shown names [P] and drawn texts
    [P], the style words drawn (English) [S] and shown with each key [E]."""

    keys: list
    entries: np.ndarray
    product_names: list
    product_texts: list
    style_words: list

    @property
    def shown_keys(self):
        """Each key as written (`shown`)."""
        return [shown(key) for key in self.keys]


def read_synonyms(paths=(SYNONYMS_FILE, EMOJI_NAMES_FILE)):
    """[(term, product's English name, "same" or "kin")] of the shop synonym table and the
    `emoji` package's names of the catalogue's products."""
    found = []
    for path in paths:
        with open(path, encoding="utf-8", newline="") as f:
            found += [(row["term"], row["product"], row["relation"])
                      for row in csv.DictReader(f)]
    return found


def read_shop_words(path=WORDS_FILE):
    """The words that name no product, colour or style (data/shop/words.csv)."""
    with open(path, encoding="utf-8", newline="") as f:
        return [row["word"] for row in csv.DictReader(f)]


def read_heads(path=HEADS_FILE):
    """[(head, product's English name)]: the category words a compound the lexicon lacks
    ends in (data/shop/heads.csv: 老爹鞋 ends in 鞋, a shoe)."""
    with open(path, encoding="utf-8", newline="") as f:
        return [(row["head"], row["product"]) for row in csv.DictReader(f)]


def claims(products, synonyms):
    """[(text, product number, strength, kin)]: every product's names and emoji, its own
    caption terms (two Han characters or three letters at least), the synonyms of products
    in `products`, and English plurals of names and synonyms."""
    index = {p.english: k for k, p in enumerate(products)}
    claimed = []
    for k, product in enumerate(products):
        claimed += [(text, k, NAME, 0) for text in (product.english, product.chinese,
                                                    *product.emoji)]
        claimed += [(t, k, TERM, 0) for t in product.terms if len(t) >= (2 if has_han(t) else 3)]
        claimed += [(text + "s", k, VARIANT, 0) for text in [product.english]
                    if text.isascii() and not text.endswith("s")]
    for term, name, relation in synonyms:
        if name in index:
            kin = int(relation == "kin")
            claimed += [(term, index[name], SYNONYM, kin)]
            claimed += [(term + "s", index[name], VARIANT, kin) for _ in [term]
                        if term.isascii() and not term.endswith("s")]
    return [c for c in claimed if c[0] and c[0].strip()]


def settled(claimed, fillers):
    """{key: (product, kin, weak)}: the product each key names. A key that several products
    claim at the same strength names none of them, unless a stronger source gives it one;
    a shop word (`fillers`) outweighs a caption term and a plural; weak: only a term."""
    found = {}  # key -> {strength: set of (product, kin)}
    for key, (_, product, strength, kin) in zip(lexicon_keys([c[0] for c in claimed]), claimed):
        if key and len(key.split()) <= LONGEST_KEY:
            found.setdefault(key, {}).setdefault(strength, set()).add((product, kin))
    named = {}
    for key, by_strength in found.items():
        for strength in sorted(by_strength):
            if key in fillers and strength >= TERM:
                break  # the shop word list says what this word is
            if len({p for p, _ in by_strength[strength]}) == 1:
                named[key] = (*sorted(by_strength[strength])[0], int(strength == TERM))
                break
            if strength <= SYNONYM:
                break  # two products of one name: neither
    return named


def build_lexicon(products, synonyms=(), shop_words=(), style_words=None, heads=()):
    """The `Lexicon` of `products` [P] (`Product`s), `synonyms` [(term, English name,
    relation)] (rows naming a product not in `products` are left out), `shop_words`, the
    run's `style_words` {style: (English, Chinese)} and `heads` [(head word, English name)]
    (`claims`, `settled`)."""
    index = {p.english: k for k, p in enumerate(products)}
    claimed = claims(products, synonyms)
    rows = {}

    def row(key):
        return rows.setdefault(key, [-1, 0, -1, -1, 0, 0, 0, 0, -1, 0])

    fillers = set(lexicon_keys(list(shop_words)))
    for key, (product, kin, weak) in settled(claimed, fillers).items():
        row(key)[PRODUCT], row(key)[KIN], row(key)[WEAK] = product, kin, weak
    for key in fillers:
        row(key)[FILLER] = int(row(key)[PRODUCT] < 0)
    for number, (english, chinese, *_) in enumerate(colors.SHOP_COLORS):
        for key in lexicon_keys([*english, *chinese]):
            row(key)[COLOR] = number
    for character, number in colors.SINGLE_CHARACTER_COLORS.items():
        if row(character)[COLOR] < 0:
            row(character)[COLOR], row(character)[NEEDS_PRODUCT] = number, 1
    styles = sorted(style_words or {})
    for number, style in enumerate(styles):
        for key in lexicon_keys(list(style_words[style])):
            row(key)[STYLE] = number
    for key in lexicon_keys(list(CONNECTOR_WORDS)):
        row(key)[CONNECTS] = 1
    # the words of names and synonyms (a synonym of a product this catalogue lacks too) are
    # product words: a prompt with one is drawn from its words when no product is found
    for key in lexicon_keys([c[0] for c in claimed if c[2] == NAME] + [t for t, *_ in synonyms]):
        for token in key.split():
            row(token)[WORD] = int(not token.isdigit())
    for key, (_, name) in zip(lexicon_keys([h for h, _ in heads]), heads):
        if name in index:
            row(key)[HEAD] = index[name]
    keys = sorted(rows)
    return Lexicon(keys, np.array([rows[k] for k in keys], np.int32).reshape(-1, COLUMNS),
                   [p.english for p in products], [p.drawn or p.english for p in products],
                   [style_words[s][0] for s in styles])


def catalogue_products(frame, vocabulary):
    """The `Product`s of a manifest's rows (`data_loader.read_manifest`, captions: English
    name, Chinese name, then keyword columns): one per English name, its emoji from the
    images' file names (1f45f.png -> 👟), terms owned by it alone, and the text drawn: the
    first of its English name, its Chinese name and its terms whose every token the model's
    `vocabulary` knows (the English name when none is)."""
    known = {token.encode("utf-8") for token in vocabulary}
    products, order = {}, []
    for captions, image in zip(frame["captions"], frame["path"]):
        english = captions[0]
        if english not in products:
            chinese = captions[1] if len(captions) > 1 and has_han(captions[1]) else ""
            products[english] = {"chinese": chinese, "terms": set(), "emoji": set()}
            order.append(english)
        found = products[english]
        for caption in captions[1:]:
            found["terms"].update(t.strip() for t in caption.split("|") if t.strip())
        # the emoji's code points end the file name (noto/1f45f.png, or a copy's noto_1f45f.png)
        code = re.search(r"(?:^|[^0-9a-z])([0-9a-f]{4,6}(?:-[0-9a-f]{4,6})*)\.png$", str(image))
        if code:
            found["emoji"].add("".join(chr(int(c, 16)) for c in code.group(1).split("-")))
    owners = {}
    for english in order:
        for term in products[english]["terms"]:
            owners.setdefault(term.lower(), set()).add(english)

    choices = []
    for english in order:
        found = products[english]
        terms = tuple(sorted(t for t in found["terms"] if owners[t.lower()] == {english}))
        choices.append((english, found, terms,
                        [t for t in (english, found["chinese"], *sorted(terms, key=len)) if t]))
    texts = [text for *_, candidates in choices for text in candidates]
    tokens = tf.strings.split(standardize_text(tf.constant(texts or [""]))).to_list()
    drawable = {text: bool(words) and set(words) <= known for text, words in zip(texts, tokens)}
    return [Product(english, found["chinese"], terms, tuple(sorted(found["emoji"])),
                    next((t for t in candidates if drawable[t]), english))
            for english, found, terms, candidates in choices]
