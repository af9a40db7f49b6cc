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
their extra words would push below the threshold or onto another product. Besides the names,
every caption term that belongs to one product only is a key of its own ("口红" and "lipstick"
find the product named "唇膏"; "shoe", shared by many, finds none by that key). A prompt
found by a key other than its product's English name is drawn as if it named the product in
English: the generator's sentence is moved by (the English name's vector - the key's), so
"外套" draws as "coat" does and "红色外套" as "coat" moved by what "红色" adds (the generator
draws English names best; see `ExemplarBank.lookup`). In training the
candidates are the drawing's product in every *other* style (never the drawing itself, so
the generator learns to restyle, not to copy), and a share of examples gets none.

The bank is a catalogue, not the training set: `with_catalogue` gives a trained model a bank
built from other rows (the release's: every product of the shipped set, the held-out ones
too), so the generator draws around drawings it never trained on (IC-GAN's transfer by
changing the conditioning instance).
"""

import dataclasses
from collections import defaultdict

import numpy as np
import keras
import tensorflow as tf
from keras import layers, ops

from adgan.data import colors
from adgan.text.tokenizer import count_known_tokens
from data_loader import load_image_rgba, names_by_language

EXEMPLAR_SIZE = 16  # thumbnail side: the layout of a 64x64 drawing, not its detail
DROP_SHARE = 0.1  # training examples given no exemplar, so the text-only path stays trained
THRESHOLD = 0.8  # least cosine of a prompt to a product name for its exemplars to be used


def product_numbers(examples):
    """(the products' first captions [P], sorted, each row's product [N]): products numbered
    as `data_loader.epoch_rows` numbers them."""
    products, product_of_row = np.unique([c[0] for c in examples["captions"]],
                                         return_inverse=True)
    return products, product_of_row.reshape(-1)


def bank_arrays(examples, style_words, size=EXEMPLAR_SIZE):
    """Numpy arrays of an `ExemplarBank` over checked training rows (`load_examples`).

    Products are numbered as `data_loader.epoch_rows` numbers them (sorted first captions),
    style slots as its style ids (`sorted(style_words)`; one slot when there are none).
    Returns (thumbnails uint8 [P, M, size, size, 3], filled float32 [P, M], English names
    [P], Chinese names [P]).
    """
    firsts = [c[0] for c in examples["captions"]]
    products, product_of_row = product_numbers(examples)
    style_names = sorted(style_words)
    slots = max(1, len(style_names))
    thumbnails = np.full((len(products), slots, size, size, 3), 255, np.uint8)
    filled = np.zeros((len(products), slots), np.float32)
    english, chinese = names_by_language(examples)
    names = {}
    for row, (path, style) in enumerate(zip(examples["path"], examples["style"])):
        product = product_of_row[row]
        slot = style_names.index(style) if style in style_names else 0
        thumbnails[product, slot] = load_image_rgba(path, size)[..., :3]
        filled[product, slot] = 1.0
        names.setdefault(product, (english[row] or firsts[row], chinese[row]))
    english_names, chinese_names = zip(*(names[p] for p in range(len(products))))
    return thumbnails, filled, list(english_names), list(chinese_names)


def product_terms(examples):
    """Each product's caption terms [P] (sets; products numbered as in `bank_arrays`): every
    caption of its rows, and each " | "-separated part of one ("clothing | dress")."""
    products, product_of_row = product_numbers(examples)
    terms = [set() for _ in products]
    for product, captions in zip(product_of_row, examples["captions"]):
        for caption in captions:
            terms[product].update(t.strip() for t in [caption, *caption.split("|")] if t.strip())
    return terms


def retrieval_keys(english, chinese, terms, vectorizer):
    """(key texts [K], their products int32 [K]): every product's English names [P], then its
    Chinese names [P] (as the bank always had them), then the caption terms (`product_terms`)
    that tokenize as no other product's term or name does, in a fixed order. A term with a
    word out of the vocabulary is never a key: its sentence vector leans to the unknown
    token's, which every prompt of unknown words shares."""
    products = len(english)
    names = list(english) + list(chinese)
    tokens = lambda texts: [tuple(int(i) for i in row if i)  # noqa: E731
                            for row in np.asarray(vectorizer(tf.constant(texts)))] if texts else []
    named = set(tokens([n for n in names if n]))
    owners = defaultdict(set)  # token ids -> {product: its texts}
    texts = sorted((text, product) for product, found in enumerate(terms) for text in found)
    for (text, product), ids in zip(texts, tokens([t for t, _ in texts])):
        if ids and 1 not in ids and ids not in named:
            owners[ids].add((product, text))
    unique = sorted(min(found) for found in owners.values()
                    if len({product for product, _ in found}) == 1)
    key_products = [k % max(products, 1) for k in range(len(names))]
    key_products += [product for product, _ in unique]
    return names + [text for _, text in unique], np.asarray(key_products, np.int32)


@dataclasses.dataclass
class Catalogue:
    """What an `ExemplarBank` holds, in numpy: thumbnails uint8 [P, M, s, s, 3], filled
    float32 [P, M], key texts [K] and the product of each key int32 [K] (`retrieval_keys`)."""

    thumbnails: np.ndarray
    filled: np.ndarray
    key_texts: list
    key_products: np.ndarray

    @property
    def shape(self):
        """(products, drawing-style slots, keys): the bank's size."""
        return (*self.filled.shape, len(self.key_texts))


def build_catalogue(examples, style_words, vectorizer, size=EXEMPLAR_SIZE):
    """The `Catalogue` of checked rows (`load_examples`): their drawings (`bank_arrays`) and
    the keys a prompt finds them by, tokenized by the model's `vectorizer`."""
    thumbnails, filled, english, chinese = bank_arrays(examples, style_words, size)
    texts, products = retrieval_keys(english, chinese, product_terms(examples), vectorizer)
    return Catalogue(thumbnails, filled, texts, products)


def ignored_token_sequences(vectorizer, words=None):
    """Token id tuples of `words` (None: `ignored_words()`, the colour words) as `vectorizer`
    tokenizes them; words with an unknown token are left out."""
    with tf.init_scope():  # eager even in a traced graph: the ids are constants
        ids = ops.convert_to_numpy(vectorizer(tf.constant(
            list(ignored_words() if words is None else words))))
    return sorted({tuple(int(i) for i in row if i) for row in ids if row.any() and 1 not in row})


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
        threshold: least cosine of a prompt to a key for retrieval.
        keys: K, retrieval keys (`retrieval_keys`), kept as the text encoder's sentence
            vectors, and a prompt found by one is drawn as its product's English name
            (`lookup`); 0: 2P, the names alone as unit vectors and no such move (as a bank
            saved before keys had products).

    Weights: `thumbnails` uint8 [P, M, size, size, 3], `filled` [P, M] (1 = a drawing),
    `keys` [K, T] (sentence vectors of the English names, then the Chinese, then the
    products' own terms; zero where a product has no such name), `key_products` int32 [K]
    (the product each key finds).
    """

    def __init__(self, products, slots, size=EXEMPLAR_SIZE, text_dim=256, threshold=THRESHOLD,
                 keys=0, **kwargs):
        super().__init__(**kwargs)
        self.products, self.slots, self.size = products, slots, size
        self.text_dim, self.threshold, self.key_count = text_dim, threshold, keys or 2 * products
        self.canonical = bool(keys)  # raw key vectors, and prompts drawn as English names
        self.thumbnails = self.add_weight(shape=(products, slots, size, size, 3), dtype="uint8",
                                          initializer="zeros", trainable=False, name="thumbnails")
        self.filled = self.add_weight(shape=(products, slots), initializer="zeros",
                                      trainable=False, name="filled")
        self.keys = self.add_weight(shape=(self.key_count, text_dim), initializer="zeros",
                                    trainable=False, name="keys")
        self.key_products = self.add_weight(  # names only until filled: key k is product k % P
            shape=(self.key_count,), dtype="int32", trainable=False, name="key_products",
            initializer=lambda shape, dtype=None: ops.arange(shape[0], dtype="int32")
            % max(products, 1))

    def fill(self, thumbnails, filled, key_sentences, key_products=None):
        """Set the drawings (`bank_arrays`), the keys' sentence vectors [K, T] and their
        products [K] (default: names only, key k is product k % P)."""
        self.thumbnails.assign(thumbnails)
        self.filled.assign(filled)
        if key_products is not None:
            self.key_products.assign(np.asarray(key_products, np.int32))
        self.index(key_sentences)

    def index(self, key_sentences):
        """Set the keys' sentence vectors [K, T] (again after the text encoder changed); a
        names-only bank keeps them as unit vectors."""
        keys = np.asarray(key_sentences, np.float32)
        norms = np.linalg.norm(keys, axis=-1, keepdims=True)
        self.keys.assign(keys if self.canonical
                         else np.where(norms > 0, keys / np.maximum(norms, 1e-12), 0.0))

    def load_own_variables(self, store):
        """Load the weights; a bank saved before `key_products` existed (three weights) had
        the names alone as keys, which its default numbering already says."""
        if len(store.keys()) == 3:
            for index, variable in enumerate((self.thumbnails, self.filled, self.keys)):
                variable.assign(store[str(index)])
            return
        super().load_own_variables(store)

    def candidates(self, product_ids, mask):
        """Thumbnails of `product_ids` [B] as floats in [-1, 1] [B, M, s, s, 3], and `mask`
        [B, M] times the filled slots."""
        ids = ops.maximum(product_ids, 0)
        images = ops.cast(ops.take(self.thumbnails, ids, axis=0), "float32") / 127.5 - 1.0
        return images, ops.take(self.filled, ids, axis=0) * ops.cast(mask, "float32")

    def lookup(self, sentence, *alternatives):
        """Prompt sentences [B, T] -> (the sentences [B, T] the generator draws from,
        (candidates [B, M, s, s, 3], mask [B, M])).

        The candidates are the drawings of the nearest key's product where its cosine
        reaches the threshold, else the mask is empty. `alternatives` are other sentences
        [B, T] of the same prompts (the prompt without its colour words); each key's best
        cosine over all of them counts (ties: the first key, so a name before a term). A
        prompt found by a key other than its product's English name (a Chinese name, a
        term) is drawn from its sentence + (English name's vector - the key's): exactly
        the English name's where the prompt is the key, and the prompt's other words'
        part kept where it was found without them (a `canonical` bank only).
        """
        unit = lambda v: v / ops.maximum(ops.norm(v, axis=-1, keepdims=True), 1e-12)  # noqa: E731
        keys = unit(self.keys)
        cosine = None
        for vectors in (sentence, *alternatives):
            found = ops.matmul(unit(ops.cast(vectors, "float32")), ops.transpose(keys))  # [B, K]
            cosine = found if cosine is None else ops.maximum(cosine, found)
        key = ops.argmax(cosine, axis=-1)
        best = ops.take(self.key_products, key)
        close = ops.cast(ops.max(cosine, axis=-1) >= self.threshold, "float32")
        exemplars = self.candidates(best, ops.ones((1, self.slots)) * close[:, None])
        if not self.canonical:
            return sentence, exemplars
        english = ops.take(self.keys, best, axis=0)  # key p is product p's English name
        has_english = ops.cast(ops.norm(english, axis=-1) > 0, "float32") * close
        shift = (english - ops.take(self.keys, key, axis=0)) * has_english[:, None]
        return sentence + ops.cast(shift, sentence.dtype), exemplars

    def retrieve(self, sentence, *alternatives):
        """Prompt sentences [B, T] -> (candidates [B, M, s, s, 3], mask [B, M]) (`lookup`)."""
        return self.lookup(sentence, *alternatives)[1]

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
                "size": self.size, "text_dim": self.text_dim, "threshold": self.threshold,
                "keys": self.key_count}


def fill_bank(gan, catalogue):
    """Fill `gan.exemplar_bank` with a `Catalogue` and its keys' sentence vectors [K, T] from
    the GAN's own text encoder (zero rows where a key has no known token: an empty name)."""
    vectors = np.asarray(gan.encode(catalogue.key_texts), np.float32)
    known = count_known_tokens(gan.vectorizer, catalogue.key_texts) > 0
    gan.exemplar_bank.fill(catalogue.thumbnails, catalogue.filled,
                           np.where(known[:, None], vectors, 0.0), catalogue.key_products)


def with_catalogue(gan, catalogue):
    """A copy of a trained instance-conditioned `gan` whose bank is `catalogue` (other
    products, other keys): the same networks and settings, a bank of the catalogue's size.
    Raises ValueError when the catalogue's drawing-style slots differ from the model's."""
    products, slots, keys = catalogue.shape
    if not gan.exemplar_size or slots != gan.exemplar_slots:
        raise ValueError(f"the catalogue has {slots} drawing-style slots, the model "
                         f"{gan.exemplar_slots if gan.exemplar_size else 'no bank'}")
    copy = type(gan).from_config({**gan.get_config(), "exemplar_products": products,
                                  "exemplar_keys": keys})
    for name, network in gan.networks().items():
        if name != "exemplar_bank":
            copy.networks()[name].set_weights(network.get_weights())
    fill_bank(copy, catalogue)
    return copy
