"""Instance conditioning (IC-GAN, Casanova et al. 2021): the generator draws around a real
drawing of the product asked for, so the shape comes from a real drawing and the GAN varies
colour, style and pose.

The release carries an `ExemplarBank`: a small thumbnail (16x16) of every training drawing,
one slot per (product, drawing style), and each product's names (English and Chinese) as
sentence vectors of the model's own text encoder. A prompt's sentence is matched to the
nearest name by cosine; at or above `threshold` the product's thumbnails are the generator's
candidates (it picks one by its noise, `pick_exemplar`), below it there is none and the
generator draws from the text alone, as before instance conditioning. A prompt is matched
twice, as written and without its colour and drawing-style words (`ignored_words`), and the
better cosine counts: "红色连衣裙" and "outlined laptop" find the dress and the laptop that
their extra words would push below the threshold or onto another product. In training the
candidates are the drawing's product in every *other* style (never the drawing itself, so
the generator learns to restyle, not to copy), and a share of examples gets none.
"""

import numpy as np
import keras
from keras import layers, ops

from adgan.data import colors
from data_loader import load_image_rgba, names_by_language

EXEMPLAR_SIZE = 16  # thumbnail side: the layout of a 64x64 drawing, not its detail
DROP_SHARE = 0.1  # training examples given no exemplar, so the text-only path stays trained
THRESHOLD = 0.8  # least cosine of a prompt to a product name for its exemplars to be used


def bank_arrays(examples, style_words, size=EXEMPLAR_SIZE):
    """Numpy arrays of an `ExemplarBank` over checked training rows (`load_examples`).

    Products are numbered as `data_loader.epoch_rows` numbers them (sorted first captions),
    style slots as its style ids (`sorted(style_words)`; one slot when there are none).
    Returns (thumbnails uint8 [P, M, size, size, 3], filled float32 [P, M], English names
    [P], Chinese names [P]).
    """
    firsts = [c[0] for c in examples["captions"]]
    products, product_of_row = np.unique(firsts, return_inverse=True)
    style_names = sorted(style_words)
    slots = max(1, len(style_names))
    thumbnails = np.full((len(products), slots, size, size, 3), 255, np.uint8)
    filled = np.zeros((len(products), slots), np.float32)
    english, chinese = names_by_language(examples)
    names = {}
    for row, (path, style) in enumerate(zip(examples["path"], examples["style"])):
        product = product_of_row.reshape(-1)[row]
        slot = style_names.index(style) if style in style_names else 0
        thumbnails[product, slot] = load_image_rgba(path, size)[..., :3]
        filled[product, slot] = 1.0
        names.setdefault(product, (english[row] or firsts[row], chinese[row]))
    english_names, chinese_names = zip(*(names[p] for p in range(len(products))))
    return thumbnails, filled, list(english_names), list(chinese_names)


def ignored_words(style_words=None):
    """The words a prompt is also matched without: the palette's colour words and the
    drawing styles' words (`style_words` {style: (English, Chinese)}), both languages."""
    words = set(colors.color_words())
    for pair in (style_words or {}).values():
        words.update(pair)
    return sorted(words)


def without_sequences(token_ids, sequences):
    """Token ids [B, L] with every run of one of the token `sequences` (tuples of ids) taken
    out and the rest moved left: what the prompt without those words tokenizes to. A
    prompt that would be left empty is kept whole."""
    length = token_ids.shape[1]
    longest = max((len(sequence) for sequence in sequences), default=0)
    padded = ops.pad(token_ids, [[0, 0], [0, longest]])
    dropped = ops.zeros_like(token_ids, dtype="bool")
    for sequence in sequences:
        starts = ops.ones_like(token_ids, dtype="bool")
        for k, token in enumerate(sequence):  # a run starts at t if ids[t + k] == token_k
            starts = starts & ops.equal(padded[:, k:k + length], token)
        for k in range(len(sequence)):  # ... and covers t .. t + len - 1
            dropped = dropped | ops.pad(starts[:, :length - k], [[0, 0], [k, 0]])
    keep = ops.logical_and(ops.greater(token_ids, 0), ops.logical_not(dropped))
    positions = ops.arange(length)[None, :]
    order = ops.argsort(ops.where(keep, positions, positions + length), axis=-1)
    stripped = ops.take_along_axis(ops.where(keep, token_ids, 0), order, axis=1)
    return ops.where(ops.any(keep, axis=1, keepdims=True), stripped, token_ids)


@keras.saving.register_keras_serializable(package="adgan")
class ExemplarBank(layers.Layer):
    """The training drawings' thumbnails and their products' names, as weights that ship with
    the model (and its SavedModel), for retrieval in the served graph.

    Args:
        products: P, products in the bank.
        slots: M, drawing styles (one thumbnail slot each).
        size: thumbnail side.
        text_dim: T, length of the sentence vectors.
        threshold: least cosine of a prompt to a product name for retrieval.

    Weights: `thumbnails` uint8 [P, M, size, size, 3], `filled` [P, M] (1 = a drawing),
    `keys` [2P, T] (unit sentence vectors of the English names, then the Chinese; zero where
    a product has no such name).
    """

    def __init__(self, products, slots, size=EXEMPLAR_SIZE, text_dim=256, threshold=THRESHOLD,
                 **kwargs):
        super().__init__(**kwargs)
        self.products, self.slots, self.size = products, slots, size
        self.text_dim, self.threshold = text_dim, threshold
        self.thumbnails = self.add_weight(shape=(products, slots, size, size, 3), dtype="uint8",
                                          initializer="zeros", trainable=False, name="thumbnails")
        self.filled = self.add_weight(shape=(products, slots), initializer="zeros",
                                      trainable=False, name="filled")
        self.keys = self.add_weight(shape=(2 * products, text_dim), initializer="zeros",
                                    trainable=False, name="keys")

    def fill(self, thumbnails, filled, key_sentences):
        """Set the drawings (`bank_arrays`) and the names' sentence vectors [2P, T]."""
        self.thumbnails.assign(thumbnails)
        self.filled.assign(filled)
        self.index(key_sentences)

    def index(self, key_sentences):
        """Set the names' sentence vectors [2P, T] (again after the text encoder changed)."""
        keys = np.asarray(key_sentences, np.float32)
        norms = np.linalg.norm(keys, axis=-1, keepdims=True)
        self.keys.assign(np.where(norms > 0, keys / np.maximum(norms, 1e-12), 0.0))

    def candidates(self, product_ids, mask):
        """Thumbnails of `product_ids` [B] as floats in [-1, 1] [B, M, s, s, 3], and `mask`
        [B, M] times the filled slots."""
        ids = ops.maximum(product_ids, 0)
        images = ops.cast(ops.take(self.thumbnails, ids, axis=0), "float32") / 127.5 - 1.0
        return images, ops.take(self.filled, ids, axis=0) * ops.cast(mask, "float32")

    def retrieve(self, sentence, *alternatives):
        """Prompt sentences [B, T] -> (candidates [B, M, s, s, 3], mask [B, M]): the nearest
        product's drawings where its cosine reaches the threshold, else an empty mask.
        `alternatives` are other sentences [B, T] of the same prompts (the prompt without
        its colour words); each name's best cosine over all of them counts."""
        cosine = None
        for vectors in (sentence, *alternatives):
            unit = ops.cast(vectors, "float32")
            unit = unit / ops.maximum(ops.norm(unit, axis=-1, keepdims=True), 1e-12)
            found = ops.matmul(unit, ops.transpose(self.keys))  # [B, 2P]
            cosine = found if cosine is None else ops.maximum(cosine, found)
        best = ops.cast(ops.argmax(cosine, axis=-1), "int32") % self.products
        close = ops.cast(ops.max(cosine, axis=-1) >= self.threshold, "float32")
        return self.candidates(best, ops.ones((1, self.slots)) * close[:, None])

    def for_training(self, product_ids, style_ids, seed):
        """Training candidates: each example's product in every other style; none for a
        `DROP_SHARE` of the examples and for examples of no product (id < 0, bundles)."""
        slot = ops.one_hot(ops.maximum(style_ids, 0), self.slots)
        other = 1.0 - slot if self.slots > 1 else ops.ones_like(slot)
        keep = keras.random.uniform(ops.shape(product_ids), seed=seed) >= DROP_SHARE
        keep = ops.cast(keep & (product_ids >= 0), "float32")
        return self.candidates(product_ids, other * keep[:, None])

    def call(self, sentence):
        return self.retrieve(sentence)

    def get_config(self):
        return {**super().get_config(), "products": self.products, "slots": self.slots,
                "size": self.size, "text_dim": self.text_dim, "threshold": self.threshold}


def fill_bank(gan, thumbnails, filled, english, chinese):
    """Fill `gan.exemplar_bank` with `bank_arrays` and its names' sentence vectors [2P, T]
    from the GAN's own text encoder (zero rows where a name is empty)."""
    names = list(english) + list(chinese)
    vectors = np.asarray(gan.encode(names), np.float32)
    keys = np.where(np.array([bool(n) for n in names])[:, None], vectors, 0.0)
    gan.exemplar_bank.fill(thumbnails, filled, keys)
