"""Bundle prompts drawn one product at a time: "一杯咖啡和一块蛋糕" -> a coffee beside a cake.

One pass of the GAN draws one product: trained on bundles with word attention it still
draws "A和B" as one shape (docs/bundles.md). So a prompt that names two or three
products joined the way shoppers join them (和 与 配 加 、 + & , / and, with, plus) is
split into its products (`BundleSplitter`), each product is drawn and gated by the
discriminator like a prompt of its own, and the drawings are laid out side by side on
white (`join_parts`), as the training bundles' `side_by_side` layout (bundles.placements)
places them. All of it is TensorFlow, so `sampling.GatedSampler` and the exported
SavedModel give the same picture for the same prompt and seed.

Splitting needs to know words: 和, 加 and 配 also sit inside words (和服, 暖和, 加绒), and
English product names hold "with" and "and" ("face with tears of joy", "bow and arrow").
A prompt is split only when it is not itself a product name the model was taught and every
part names a product word of the model's captions (two or more characters, or an English
word), at the strong connectors if that works, else at all; otherwise it is drawn in one
pass, as before. A part's leading count goes ("一杯",
"a", "the"): the single products were taught by name. A style word in front of the prompt
("立体", "3d", or the one `styles.vary_style` picked) styles every part alike.
"""

import tensorflow as tf

from adgan.data.styles import names_style_pattern
from adgan.helpers import has_han
from adgan.text.tokenizer import standardize_text

MAX_PARTS = 3
PART_SEED_STEP = 1 << 40  # part j of a prompt drawn with seed s is drawn with s + j * step
SEPARATOR = "\x1f"  # a control character: cleaned out of every prompt before splitting
# Connectors between products. The weak ones also join a product's own parts ("cup with
# straw", 配件, 加绒): a prompt is split at the strong ones alone when that gives products.
STRONG = r"(?i)\s*(?:[和与、，,+＋&]|\s(?:and|plus)\s)\s*"
CONNECTORS = r"(?i)\s*(?:[和与配加、，,+＋&]|\s(?:and|with|plus)\s)\s*"
COUNT = (r"(?i)^\s*(?:(?:[一两二三]|[1-3])\s*[杯块份件台部本双个只瓶盒包条张把支顶副套款片碗盘串]"
         r"|(?:a|an|the|some|one|two)\s+)")
LONGEST_WORD = 6  # tokens: product words longer than this are not matched inside a part
FILL = 0.94  # of the canvas width the products take side by side (bundles.placements)
IS_WORD, IS_NAME = 1, 2  # bits of the word table's values


def word_keys(prompts):
    """Texts -> their tokens joined by one space, as the word table stores them
    ("Hot Beverage" -> "hot beverage", "咖啡" -> "咖 啡"); works on Python lists and tensors."""
    return tf.strings.reduce_join(tf.strings.split(standardize_text(prompts)), axis=-1,
                                  separator=" ")


class BundleSplitter:
    """Splits prompts into the products they name (see the module docstring).

    Args:
        names: the product names the model was taught (never split).
        words: product words ("咖啡", "shortcake", "hot beverage"; names count too); Chinese
            ones of one character and English ones under three letters are left out, as they
            sit inside too many other words.
        style_words: the run's {style: (English word, Chinese word)}.

    Call: prompts string [B] -> (parts string [P], row int64 [P] (the text each part came
    from), index int32 [P] (its place in the text), count int32 [P] (parts of that text)).
    A text that is not split is one part, itself.
    """

    def __init__(self, names, words, style_words=None):
        names = sorted({n.strip() for n in names if n.strip()})
        words = sorted({w.strip() for w in [*words, *names]
                        if len(w.strip()) >= (2 if has_han(w) else 3)})
        values = {}
        for key in word_keys(tf.constant(words or [""])).numpy() if words else []:
            values[key] = values.get(key, 0) | IS_WORD
        for key in word_keys(tf.constant(names)).numpy() if names else []:
            values[key] = values.get(key, 0) | IS_NAME
        values.pop(b"", None)
        self.table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(values) or [b"\x00"], tf.string),
            tf.constant(list(values.values()) or [0], tf.int32)), default_value=0)
        style_words = dict(style_words or {})
        english = "|".join(sorted(w[0] for w in style_words.values())) or "\x00"
        chinese = "|".join(sorted(w[1] for w in style_words.values())) or "\x00"
        # a leading style word: group 1 the word (with its space), group 2 the rest
        self.lead = f"(?is)^\\s*((?:{english})\\s+|(?:{chinese})\\s*)(.*)$"
        self.names_style = names_style_pattern(style_words) if style_words else None

    def flags(self, prompts, bit):
        """bool [N]: does any run of up to LONGEST_WORD tokens of each text hold `bit`?"""
        tokens = tf.strings.split(standardize_text(prompts))
        grams = tf.strings.ngrams(tokens, tuple(range(1, LONGEST_WORD + 1)), separator=" ")
        hits = tf.bitwise.bitwise_and(self.table.lookup(grams), bit) > 0
        return tf.reduce_any(hits, axis=1)

    def __call__(self, prompts):
        prompts = tf.strings.regex_replace(tf.convert_to_tensor(prompts, tf.string), r"\p{Cc}", " ")
        has_lead = tf.strings.regex_full_match(prompts, self.lead)
        lead = tf.where(has_lead, tf.strings.regex_replace(prompts, self.lead, r"\1"), "")
        body = tf.where(has_lead, tf.strings.regex_replace(prompts, self.lead, r"\2"), prompts)
        is_name = tf.bitwise.bitwise_and(self.table.lookup(word_keys(body)), IS_NAME) > 0
        strong, strong_ok = self.split_at(body, lead, STRONG)
        every, every_ok = self.split_at(body, lead, CONNECTORS)
        chosen = tf.where(is_name, prompts, tf.where(strong_ok, strong, tf.where(every_ok, every,
                                                                                  prompts)))
        parts = tf.strings.split(chosen, SEPARATOR)
        rows = parts.value_rowids()
        return (parts.flat_values, rows,
                tf.cast(tf.ragged.range(parts.row_lengths()).flat_values, tf.int32),
                tf.cast(tf.gather(parts.row_lengths(), rows), tf.int32))

    def split_at(self, body, lead, connectors):
        """(the parts of each text split at `connectors`, counts dropped and `lead` styled, joined
        by SEPARATOR; whether that split is kept: 2 to MAX_PARTS parts, each naming a word)."""
        pieces = tf.strings.split(tf.strings.regex_replace(body, connectors, SEPARATOR),
                                  SEPARATOR)                              # ragged [B, None]
        pieces = tf.ragged.map_flat_values(self.uncounted, pieces)
        named = tf.RaggedTensor.from_row_splits(self.flags(pieces.flat_values, IS_WORD),
                                                pieces.row_splits)
        count = pieces.row_lengths()
        kept = (count >= 2) & (count <= MAX_PARTS) & tf.reduce_all(named, axis=1)
        styled = tf.ragged.map_flat_values(self.with_style, pieces,
                                           tf.gather(lead, pieces.value_rowids()))
        return tf.strings.reduce_join(styled, axis=1, separator=SEPARATOR), kept

    def uncounted(self, parts):
        """Parts without a leading count ("一块蛋糕" -> "蛋糕"), unless it is part of the
        product's own name (一杯奶, "glass of milk": "奶" alone names no product)."""
        parts = tf.strings.strip(parts)
        bare = tf.strings.strip(tf.strings.regex_replace(parts, COUNT, ""))
        return tf.where(self.flags(bare, IS_WORD), bare, parts)

    def with_style(self, parts, lead):
        """Each part with the prompt's leading style word, unless it names a style itself."""
        if self.names_style is None:
            return parts
        own = tf.strings.regex_full_match(parts, self.names_style)
        return tf.where(own | (lead == ""), parts, lead + parts)


def split_requests(splitter, prompts, seeds, budgets):
    """(part prompts [P], part seeds [P], part budgets [P], layout) of a batch of prompts: part
    j of a prompt drawn with seed s uses s + j * PART_SEED_STEP, so the first part of
    every prompt, and a prompt not split, is drawn exactly as without splitting."""
    parts, rows, index, count = splitter(prompts)
    seeds = tf.gather(tf.cast(seeds, tf.int64), rows) + tf.cast(index, tf.int64) * PART_SEED_STEP
    layout = {"row": rows, "index": index, "count": count, "batch": tf.size(prompts)}
    return parts, seeds, tf.gather(budgets, rows), layout


def place(images, count, index):
    """float images [N, S, S, 3] (white 255) -> the canvas [N, S, S, 3] with each shrunk
    into box `index` of `count` side by side (bundles.placements' side_by_side, unjittered)."""
    size = tf.shape(images)[1]
    side = tf.cast(tf.cast(size, tf.float32) * FILL / count, tf.int32)
    gap = (size - side * count) // (count + 1)
    left, top = gap + index * (side + gap), (size - side) // 2
    small = tf.image.resize(images, tf.stack([side, side]), "area")
    return tf.pad(small, [[0, 0], [top, size - side - top], [left, size - side - left], [0, 0]],
                  constant_values=255.0)


def join_parts(images, layout):
    """uint8 part pictures [P, S, S, 3] -> uint8 pictures [B, S, S, 3]: a prompt's parts side by
    side on white (a prompt of one part: its picture unchanged)."""
    canvases = tf.cast(images, tf.float32)
    for count in range(2, MAX_PARTS + 1):
        for index in range(count):
            chosen = tf.where((layout["count"] == count) & (layout["index"] == index))
            placed = place(tf.gather_nd(canvases, chosen), count, index)
            canvases = tf.tensor_scatter_nd_update(canvases, chosen, placed)
    # white is the largest value, so the darker (drawn) pixel of the boxes wins
    joined = tf.math.unsorted_segment_min(canvases, layout["row"], layout["batch"])
    return tf.cast(tf.clip_by_value(tf.round(joined), 0.0, 255.0), tf.uint8)


def join_results(out, layout):
    """The gated draws of the parts {"images" uint8, "score", "accepted", "tries": [P, ...]} ->
    the prompts': composed images, the lowest part score, accepted when every part was,
    the tries of all parts."""
    row, batch = layout["row"], layout["batch"]
    result = {"images": join_parts(out["images"], layout)}
    if "score" in out:
        result.update(
            score=tf.math.unsorted_segment_min(out["score"], row, batch),
            accepted=tf.math.unsorted_segment_min(tf.cast(out["accepted"], tf.int32), row,
                                                  batch) > 0,
            tries=tf.math.unsorted_segment_sum(out["tries"], row, batch))
    return result
