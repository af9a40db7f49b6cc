"""tf.data input pipeline for (text, image) manifests (the tokenizer is tokenizer.py).

A manifest is a CSV or JSONL file with one row per image: an image-path column
(relative paths are resolved against the manifest's folder) and one or more
caption columns. Each example samples one non-empty caption of its row per
epoch (the shipped keyword cells, "clothing | dress", are one caption each:
the standardizer turns the bars into spaces).

    image,name_en,name_zh,split
    img/0001.jpg,black down jacket,黑色羽绒服,train

Elements of `make_dataset` are dicts: {"text": string[B], "images": float32[B, H, W, 3],
"style": string[B]} with images scaled to [-1, 1] ("style" is the row's `style` cell,
"" when the manifest has none; `styles.py` makes it a word of the caption).
"""

import json
import os

import numpy as np
import pandas as pd
import tensorflow as tf
from PIL import Image

from adgan.data import bundles, colors
from adgan.data import styles
from adgan.helpers import has_han
from adgan.text.tokenizer import clean_text

DEFAULT_MANIFEST = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "data", "emoji", "captions.csv")
DEFAULT_CAPTION_COLUMNS = ("name_en", "name_zh", "keywords_en", "keywords_zh")


class ManifestError(ValueError):
    """A manifest that cannot be used at all (missing file or column, no usable row)."""


# ----------------------------------------------------------------------------- manifest

def read_manifest(path, image_column="image", caption_columns=DEFAULT_CAPTION_COLUMNS,
                  split=None, filters=None, recolorable=None):
    """Read a CSV/JSONL manifest into a DataFrame with absolute paths and caption lists.

    `split` keeps rows whose `split` column equals it; `filters` ({column: allowed
    values}, e.g. {"group": ["Objects"]}) keeps rows whose columns hold one of the
    allowed values; an empty list of values allows all. `recolorable` ({column:
    values}, e.g. {"subgroup": ["clothing"]}) marks the rows that colour augmentation
    may recolour (those whose captions name no colour yet).

    Returns a DataFrame with columns `path` (absolute image path), `captions`
    (list of non-empty caption strings), `recolorable` (bool), `style` and `subgroup`
    (the manifest's cells, "" without that column) and `unsafe` (what `clean_text` would
    change in the row's captions, "" for none; `check_rows` skips such rows). Raises
    `ManifestError` naming the file and the problem when the file or a column is
    missing.
    """
    check_manifest_file(path)
    try:
        if path.endswith((".jsonl", ".json")):
            frame = pd.read_json(path, lines=True, dtype=False)
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except ValueError as error:
        raise ManifestError(f"{path}: cannot parse manifest ({error})") from error
    filters = {column: list(values) for column, values in (filters or {}).items() if values}
    recolorable = {column: list(values) for column, values in (recolorable or {}).items()}
    wanted = ([image_column, *caption_columns] + (["split"] if split else []) + list(filters)
              + list(recolorable))
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise ManifestError(f"{path}: missing column(s) {', '.join(missing)}; "
                            f"found {', '.join(map(str, frame.columns))}")
    if split:
        frame = frame[frame["split"] == split]
    for column, values in filters.items():
        frame = frame[frame[column].isin(values)]
    root = os.path.dirname(os.path.abspath(path))
    frame = frame.fillna("").astype(str)

    # column by column: iterrows builds a Series a row, most of the time on a large manifest
    cleaned = [[clean_text(text) for text in row]
               for row in zip(*(frame[column].tolist() for column in caption_columns))]
    captions = [[text for text, _ in row if text] for row in cleaned]
    marked = np.full(len(frame), bool(recolorable))
    for column, values in recolorable.items():
        marked &= frame[column].isin(values).to_numpy()
    return pd.DataFrame({
        "path": [os.path.join(root, p) for p in frame[image_column]],
        "captions": captions,
        "recolorable": [bool(m) and not any(colors.mentions_color(c) for c in row_captions)
                        for m, row_captions in zip(marked, captions)],
        "style": frame["style"].str.strip().tolist() if "style" in frame else [""] * len(frame),
        "subgroup": (frame["subgroup"].str.strip().tolist() if "subgroup" in frame
                     else [""] * len(frame)),
        "unsafe": ["; ".join(note for _, note in row if note) for row in cleaned],
    })


def check_manifest_file(path):
    """Raise `ManifestError` naming `path` unless it is a non-empty UTF-8 text file."""
    if not os.path.exists(path):
        raise ManifestError(f"{path}: manifest not found")
    if os.path.isdir(path):
        raise ManifestError(f"{path}: is a folder; give the manifest file inside it "
                            "(a .csv or .jsonl)")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        raise ManifestError(f"{path}: cannot read the manifest ({error.strerror})") from None
    if not data.strip():
        raise ManifestError(f"{path}: empty file; a manifest needs a header and a row an image")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ManifestError(f"{path}: not UTF-8 text (byte {error.start}); save it as "
                            "UTF-8") from None


def read_style_words(manifest, only=()):
    """`styles.read_style_words` of the styles in `only` (all when empty), its errors as
    `ManifestError`."""
    try:
        words = styles.read_style_words(manifest)
    except styles.StyleError as error:
        raise ManifestError(str(error)) from error
    return {style: pair for style, pair in words.items() if not only or style in only}


def recolor_filter(manifest, subgroups, color_augment):
    """`load_examples`' `recolorable` argument for colour augmentation: rows whose
    `subgroup` is one of `subgroups`; None when augmentation is off or the manifest
    has no `subgroup` column (a catalogue of your own: nothing is recoloured)."""
    if not color_augment:
        return None
    check_manifest_file(manifest)
    if manifest.endswith((".jsonl", ".json")):
        with open(manifest, encoding="utf-8") as f:
            first = f.readline()
        try:
            columns = json.loads(first) if first.strip() else {}
        except ValueError:
            return None  # read_manifest reports the broken file
    else:
        columns = pd.read_csv(manifest, nrows=0, dtype=str).columns
    return {"subgroup": list(subgroups)} if "subgroup" in columns else None


def load_image_rgba(path, image_size):
    """Decode an image to uint8 [S, S, 4]: RGB composited on white, plus the product's alpha.

    Transparent pixels are composited on white, as product shots usually are. An
    image without alpha (a JPEG product shot, an opaque palette PNG) gets alpha 0 on
    its near-white background and 255 elsewhere.
    """
    with Image.open(path) as image:
        image.load()
        # a palette image has alpha only with a transparency entry (oxipng's opaque ones)
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P"
                                                 and "transparency" in image.info):
            rgba = image.convert("RGBA")
            alpha = rgba.getchannel("A")
            image = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image.alpha_composite(rgba)
            image = image.convert("RGB")
        else:
            image = image.convert("RGB")
            alpha = Image.fromarray(np.where(np.asarray(image).min(-1) < 240, 255, 0)
                                    .astype(np.uint8))
        if image.size != (image_size, image_size):
            image = image.resize((image_size, image_size), Image.Resampling.BICUBIC)
            alpha = alpha.resize((image_size, image_size), Image.Resampling.BICUBIC)
        return np.concatenate([np.asarray(image, dtype=np.uint8),
                               np.asarray(alpha, dtype=np.uint8)[..., None]], -1)


def load_image(path, image_size):
    """Decode any PIL-readable image (PNG/JPEG/WebP/...), any mode, to uint8 RGB [S, S, 3].

    Transparent pixels are composited on white, as product shots usually are.
    """
    return load_image_rgba(path, image_size)[..., :3]


def check_rows(frame, image_size):
    """Split manifest rows into usable ones and a list of {"file", "reason"} bad rows: a
    row is bad when a caption needed cleaning (`clean_text`: control or invisible format
    characters, or over `MAX_TEXT_CHARACTERS`), when it has no caption, or when its image
    is missing or undecodable."""
    good, bad = [], []
    for index, row in frame.iterrows():
        if row["unsafe"]:  # never trained on, so none of it becomes a vocabulary token
            bad.append({"file": row["path"],
                        "reason": f"unsafe caption ({row['unsafe']}); fix the row to train on it"})
        elif not row["captions"]:
            bad.append({"file": row["path"], "reason": "empty text"})
        elif not os.path.exists(row["path"]):
            bad.append({"file": row["path"], "reason": "missing file"})
        else:
            try:
                load_image(row["path"], image_size)
                good.append(index)
            except Exception as error:  # PIL raises many types for broken files
                bad.append({"file": row["path"], "reason": f"undecodable image: {error}"})
    return frame.loc[good].reset_index(drop=True), bad


def load_examples(manifest, image_size, image_column="image",
                  caption_columns=DEFAULT_CAPTION_COLUMNS, split=None, filters=None,
                  recolorable=None):
    """Read and check a manifest (see `read_manifest`); return (usable rows, report dict).

    Raises `ManifestError` when no row is usable.
    """
    frame = read_manifest(manifest, image_column, caption_columns, split, filters, recolorable)
    good, bad = check_rows(frame, image_size)
    report = {"manifest": os.path.abspath(manifest), "split": split, "filters": filters or {},
              "rows": len(frame),
              "usable": len(good), "skipped": len(bad), "bad_rows": bad,
              "recolorable": int(good["recolorable"].sum()) if len(good) else 0}
    if good.empty:
        raise ManifestError(f"{manifest}: no usable row ({len(frame)} rows, "
                            f"{len(bad)} bad{', e.g. ' + bad[0]['reason'] if bad else ''})")
    return good, report


# ----------------------------------------------------------------------------- tf.data

def to_float_tensor(images):
    """uint8 images -> float32 in [-1, 1] inside a graph (`helpers.to_float` for numpy)."""
    return tf.cast(images, tf.float32) / 127.5 - 1.0


def to_uint8_tensor(images):
    """float images in [-1, 1] -> uint8 inside a graph, exactly as `helpers.to_uint8`
    (round half to even)."""
    return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0.0, 255.0), tf.uint8)


def caption_matrix(captions):
    """Pad lists of captions into a string matrix [N, K] plus counts [N]."""
    width = max(len(c) for c in captions)
    matrix = np.array([c + [""] * (width - len(c)) for c in captions], dtype=object)
    return matrix, np.array([len(c) for c in captions], dtype=np.int64)


def epoch_rows(examples, color_augment, style_words):
    """One epoch's rows (every row, then `color_augment` copies of the recolourable ones):
    (image paths [N], (captions [N, K], caption counts [N], is-copy flags [N], styles [N],
    English style words [N], Chinese style words [N], style ids [N], concept ids [N],
    product ids [N])).

    A product is a row's first caption (its product name), numbered in sorted order: the
    renderings of one product in every style share a product id (`exemplars.bank_arrays`
    numbers them alike) and a concept id, but recoloured copies get concept ids of their
    own (their colour differs)."""
    recolored = (np.flatnonzero(examples["recolorable"].to_numpy(bool)) if color_augment
                 else np.zeros(0, np.int64))
    rows_used = np.concatenate([np.arange(len(examples)), np.tile(recolored, color_augment)])
    captions, counts = caption_matrix([examples["captions"].iloc[i] for i in rows_used])
    is_copy = np.arange(len(rows_used)) >= len(examples)
    row_styles = examples["style"].to_numpy(dtype=str)[rows_used]
    words_en, words_zh = (np.array([style_words.get(s, ("", ""))[i] for s in row_styles],
                                   dtype=object) for i in (0, 1))
    style_names = sorted(style_words)
    style_ids = np.array([style_names.index(s) if s in style_words else -1 for s in row_styles],
                         dtype=np.int32)
    _, concepts = np.unique([c[0] for c in examples["captions"]], return_inverse=True)
    product_ids = concepts.reshape(-1)[rows_used].astype(np.int32)
    concept_ids = np.where(is_copy, concepts.max() + 1 + np.arange(len(rows_used)),
                           product_ids).astype(np.int32)
    return (examples["path"].to_numpy(dtype=str)[rows_used],
            (captions, counts, is_copy, row_styles, words_en, words_zh, style_ids, concept_ids,
             product_ids))


def example_of_row(with_style_id):
    """The map from ((cached RGBA image, `epoch_rows` columns), a random int64) to one
    training example: a caption drawn from the row's, the recoloured image and colour word
    for a copy, and the style word before about half of the captions (`make_dataset`)."""

    def pick_caption(row, choice):
        (rgba, (options, count, recolor, style, english, chinese, style_id, concept_id,
                product_id)) = row
        caption = options[choice % count]
        color = (choice // count) % len(colors.PALETTE)
        image, text = tf.cond(recolor,
                              lambda: (colors.recolor(rgba, color),
                                       colors.add_color_word(caption, color)),
                              lambda: (rgba[..., :3], caption))
        # an independent draw from the same number: its digits above caption and colour
        draw = (choice // (count * len(colors.PALETTE))) % 1000
        named = draw < int(1000 * styles.STYLE_WORD_RATE)
        text = tf.cond(named, lambda: styles.add_style_word(text, english, chinese), lambda: text)
        example = {"text": text, "images": to_float_tensor(image), "style": style,
                   "concept_id": concept_id, "product_id": product_id}
        if with_style_id:
            example["style_id"] = style_id
        return example

    return pick_caption


def make_dataset(examples, image_size, batch_size, seed=0, shuffle=True, repeat=False,
                 drop_remainder=True, vectorizer=None, color_augment=0, style_words=None,
                 skip=0, bundles=None, bundle_share=0.0):
    """A batched tf.data pipeline over checked rows from `load_examples`.

    Decoding runs in parallel and is cached; one caption per row is drawn per epoch from a
    seeded random stream, so runs are reproducible. With a `vectorizer`, batches carry
    "token_ids" [B, L] in place of "text" (keeping strings out of distributed steps).
    `color_augment` adds that many copies of every `recolorable` row to each epoch, each
    recoloured with a colour drawn per epoch, its caption prefixed with the colour word
    ("red dress", "红色连衣裙"; see `colors.py`). With `style_words`
    ({style: (English, Chinese)}, `read_style_words`), about half of the captions of
    rows of a named style start with its word ("3d red dress", "立体 红色连衣裙";
    `styles.py`). Vectorized batches carry "style_id" (int32 [B]: the row's style's index
    in `sorted(style_words)`, -1 for none) in place of "style". Every batch has
    "concept_id" and "product_id" (int32 [B], `epoch_rows`; -1 for a bundle's product). `skip` drops that many examples
    first, cheaply: a repeating pipeline resumes at epochs x steps x batch size. With a
    `bundles.BundleSource`, a `bundle_share` of the examples (a fixed pattern of positions,
    so a resume skips exactly) are composed bundles instead (`bundle_stream`)."""
    share = int(round(1000 * bundle_share)) if bundles is not None else 0
    skip, skip_bundles = skip - skip * share // 1000, skip * share // 1000
    paths, columns = epoch_rows(examples, color_augment, style_words or {})

    def decode(path):
        image = tf.numpy_function(lambda p: load_image_rgba(p.decode("utf-8"), image_size),
                                  [path], tf.uint8)
        image.set_shape((image_size, image_size, 4))
        return image

    images = tf.data.Dataset.from_tensor_slices(paths).map(
        decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).cache()
    rows = tf.data.Dataset.zip(images, tf.data.Dataset.from_tensor_slices(columns))
    if shuffle:
        rows = rows.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        rows = rows.repeat()
    drawn = tf.data.Dataset.zip(rows, tf.data.Dataset.random(seed=seed)).skip(skip)

    dataset = drawn.map(example_of_row(vectorizer is not None),
                        num_parallel_calls=tf.data.AUTOTUNE)
    if share:  # example k is a bundle where floor(k * share) steps up
        position = tf.data.Dataset.range(skip + skip_bundles, 2 ** 62)
        dataset = tf.data.Dataset.choose_from_datasets(
            [dataset, bundle_stream(bundles, skip_bundles, image_size, vectorizer is not None)],
            position.map(lambda k: (k + 1) * share // 1000 - k * share // 1000))
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if vectorizer is not None:
        dataset = dataset.map(lambda b: {"token_ids": vectorizer(b["text"]), "images": b["images"],
                                         "style_id": b["style_id"],
                                         "concept_id": b["concept_id"],
                                         "product_id": b["product_id"]},
                              num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def names_by_language(examples):
    """(English names, Chinese names) of checked rows: each row's first caption without and
    with Han characters ("" where it has none)."""
    def first(captions, chinese):
        return next((c for c in captions if has_han(c) == chinese), "")

    return ([first(c, False) for c in examples["captions"]],
            [first(c, True) for c in examples["captions"]])


def bundle_source(examples, image_size, style_words=None, seed=0):
    """A `bundles.BundleSource` over checked rows: their RGBA images (decoded once, kept in
    memory: 4,473 rows at 64 px are 73 MB), names (`names_by_language`), subgroups and
    styles."""
    products = np.stack([load_image_rgba(p, image_size) for p in examples["path"]])
    return bundles.BundleSource(products, *names_by_language(examples), examples["subgroup"],
                                examples["style"], style_words, seed)


def bundle_stream(source, start, image_size, with_style_id):
    """Examples `start`, `start` + 1, ... of a `bundles.BundleSource`, shaped as
    `make_dataset`'s single products are."""
    def make(k):
        image, text, style, style_id, concept_id = tf.numpy_function(
            source, [k], [tf.uint8, tf.string, tf.string, tf.int32, tf.int32], stateful=False)
        image.set_shape((image_size, image_size, 3))
        example = {"text": tf.reshape(text, ()), "images": to_float_tensor(image),
                   "style": tf.reshape(style, ()), "concept_id": tf.reshape(concept_id, ()),
                   "product_id": tf.constant(-1, tf.int32)}  # several products: no exemplar
        if with_style_id:
            example["style_id"] = tf.reshape(style_id, ())
        return example

    return tf.data.Dataset.range(start, 2 ** 62).map(make, num_parallel_calls=tf.data.AUTOTUNE,
                                                       deterministic=True)


def batches_per_epoch(examples, batch_size, color_augment=0):
    """Whole batches in one pass over the rows and their recoloured copies (`epoch_rows`)."""
    recolorable = int(examples["recolorable"].sum()) if color_augment else 0
    return (len(examples) + color_augment * recolorable) // batch_size
