"""Prompt understanding: what a shop or a shopper wrote -> what to draw, and what was read.

"限时特惠！新款冬季加厚黑色羽绒服 男女同款" is drawn as "coat" (the nearest kin the catalogue
has of 羽绒服) in black, with 限时特惠 新款 冬季 加厚 男女同款 left out; "Fresh hot coffee ☕
and strawberry shortcake, 50% off today" as a hot beverage beside a shortcake; "lipstick"
as the catalogue's lipstick although the model's vocabulary lacks the word.

A `Lexicon` is built once from the run's catalogue (every product's English and Chinese
names, its emoji, the caption terms that belong to it alone), the shop synonym table
(`data/shop/synonyms.csv`: names shops and shoppers use, and for products the catalogue
lacks, the kin it is drawn as), the colours shops name (`colors.SHOP_COLORS`), the run's
style words and the words that name none of them (`data/shop/words.csv`: marketing,
audience, season, material, size). `PromptReader` reads prompts with it in TensorFlow,
so generate.py, the ad layer and a TF Serving client of the SavedModel read alike:

1. the prompt is cut into tokens (a Han character, an emoji, a Latin word each; , / + &
   、 become one connector token), and its longest runs of tokens that are keys of the
   lexicon are matched, longest first (so 红苹果 is the red apple, not red + apple);
2. the connectors (and "and", "with", 和, 加, ...) cut it into groups; a group's product
   is its last product phrase (head-final, in both languages: "strawberry shortcake",
   草莓蛋糕, "手机壳"), two or three groups with products make a bundle; a caption term
   alone ("top", "flash": CLDR keywords) gives way to a name or a synonym, so "mobile phone
   top rated" is a phone and "running shoe, flash sale" no bundle; a compound the lexicon
   lacks is read by its head (老爹鞋: 鞋; raincoat: coat; `heads`);
3. a colour word is the colour of its group's product (a word that is both a colour and
   a product, "orange", is a colour when a product follows it; a one-character colour,
   黑 in 黑羽绒服, only right before a product, so 网红 is no red); the first style word is
   the style;
4. the text drawn is the products' drawable names (their English names, or the Chinese
   where the English has a word out of the vocabulary) joined by "and", after the style
   word; the colour is given to the drawing afterwards (`colors.recolor_drawings`);
   everything else is reported as ignored.

A prompt with no product phrase but some word of a product name ("羽绒服" to a model whose
catalogue has no coat) is drawn from those words, as before; one with neither
("限时特惠 包邮", HTML, digits) is not drawable, and callers refuse it with one line.
"""
import numpy as np
import tensorflow as tf

from adgan.data import colors
from adgan.text.lexicon import (COLOR, COLUMNS, CONNECTS, FILLER, HEAD, KIN, NEEDS_PRODUCT,
                                PRODUCT, STYLE, WEAK, WORD, reader_text)
from adgan.text.tokenizer import clean_text

MAX_TOKENS = 96  # a prompt's tokens read (a shop title has at most 60 characters)
MAX_PARTS = 3  # products of one bundle (composition.MAX_PARTS)
SUFFIXES = range(4, 13)  # letters of an unknown English word's ending read as its head


def shift_right(values, k, fill):
    """values [B, T] moved k places right (position i holds i - k), `fill` coming in."""
    if k == 0:
        return values
    return tf.concat([tf.fill([tf.shape(values)[0], k], fill), values[:, :-k]], axis=1)


def window(flags, start, stop):
    """bool [B, T]: is any of flags [B, T] true at i + start ... i + stop - 1 (one cumulative
    sum, however wide the window)."""
    left, right = max(0, -start), max(0, stop)
    counts = tf.cumsum(tf.pad(tf.cast(flags, tf.int32), [[0, 0], [left + 1, right]]), axis=1)
    size = flags.shape[1]
    return (counts[:, left + stop:left + stop + size] - counts[:, left + start:left + start + size]
            ) > 0


def shift_left(values, k, fill):
    """values [B, T] moved k places left (position i holds i + k), `fill` coming in."""
    if k == 0:
        return values
    return tf.concat([values[:, k:], tf.fill([tf.shape(values)[0], k], fill)], axis=1)


class PromptReader:
    """Reads prompts with a `Lexicon` in TensorFlow (see the module docstring).

    Call: prompts string [B] -> {
        "text" string [B]: what the model draws (the prompt itself where nothing drawable
            was read),
        "drawable" bool [B]: False where the prompt names no product and no product word,
        "found" bool [B]: a product of the catalogue was read,
        "products" int32 [B, 3], "colors" int32 [B, 3] (`colors.SHOP_COLORS`): each part's
            product and colour (-1 none; with no product, colors[:, 0] is the prompt's),
        "drawn_as" string [B]: e.g. "coat (nearest kin of 羽绒服) · black",
        "ignored" string [B]: the words read as naming nothing drawn ("限时特惠 新款 男女同款")}.
    """

    def __init__(self, lexicon):
        self.lexicon = lexicon
        self.longest = max([len(k.split()) for k in lexicon.keys] + [1])
        self.table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant(lexicon.keys or ["\x00"]),
            tf.range(max(len(lexicon.keys), 1), dtype=tf.int32)), default_value=-1)
        self.entries = tf.constant(np.concatenate(
            [lexicon.entries, -np.ones((1, COLUMNS), np.int32)]))  # the last row: no entry
        self.shown_keys = tf.constant(lexicon.shown_keys + [""])
        self.product_names = tf.constant(lexicon.product_names + [""])
        self.product_texts = tf.constant(lexicon.product_texts + [""])
        self.color_names = tf.constant([colors.shop_color_name(k)
                                        for k in range(len(colors.SHOP_COLORS))] + [""])
        self.style_words = tf.constant(lexicon.style_words + [""])
        rows = np.concatenate([lexicon.entries, -np.ones((1, COLUMNS), np.int32)])
        # an entry that means something drawn or ignored (not only a flag)
        self.meaningful = tf.constant((rows[:, PRODUCT] >= 0) | (rows[:, COLOR] >= 0)
                                      | (rows[:, STYLE] >= 0) | (rows[:, FILLER] > 0))
        # the product an English word's ending names: its product, else as a head word
        self.ending_product = tf.constant(np.where(rows[:, PRODUCT] >= 0, rows[:, PRODUCT],
                                                   rows[:, HEAD]))

    def field(self, entry, column):
        """Column `column` of entries [B, T] (-1 = none reads the empty last row)."""
        rows = tf.where(entry >= 0, entry, tf.shape(self.entries)[0] - 1)
        return tf.gather(self.entries[:, column], rows)

    def match(self, tokens):
        """Longest-first matching of the lexicon's keys in tokens [B, T]: (the entry of the
        span starting at each place or -1, the span's length or 0, the entry of each token
        alone)."""
        taken = tf.zeros_like(tokens, tf.bool)
        start_entry = tf.fill(tf.shape(tokens), -1)
        start_length = tf.zeros_like(start_entry)
        for n in range(self.longest, 0, -1):
            gram = tf.strings.join([shift_left(tokens, k, "") for k in range(n)], separator=" ")
            entry = self.table.lookup(gram)
            if n == 1:
                alone = entry
            meaning = tf.gather(self.meaningful, self.rows(entry, self.meaningful))
            available = (entry >= 0) & meaning & ~window(taken, 0, n)
            # of two overlapping spans of one length, the earlier
            accepted = available & ~window(available, 1 - n, 0)
            start_entry = tf.where(accepted, entry, start_entry)
            start_length = tf.where(accepted, n, start_length)
            taken |= window(accepted, 1 - n, 1)
        return start_entry, start_length, alone

    def spread(self, at_start, length):
        """bool [B, T] true at every token of the spans whose start is true in `at_start`."""
        covered = tf.zeros_like(at_start)
        for k in range(self.longest):
            covered |= shift_right(at_start & (length > k), k, False)
        return covered

    def heads(self, tokens, unread, alone):
        """The products head words name at each unread token (-1: none), and the words shown
        for them: (a Han character that is a head and ends a run of Han characters, the head
        of their compound (老爹鞋, 水桶包: 鞋, 包); an unread English word that is a head
        (shoes), else whose longest ending of 4 or more letters names a product (raincoat:
        coat, sundress: dress), the words shown)."""
        han = tf.strings.regex_full_match(tokens, r"\p{Han}")
        run_end = unread & han & shift_right(han, 1, False) & ~shift_left(unread & han, 1, False)
        latin = unread & tf.strings.regex_full_match(tokens, r"[a-z][a-z0-9-]*")
        length = tf.strings.length(tokens)
        ending = tf.fill(tf.shape(tokens), -1)
        for n in SUFFIXES:  # longer endings last, so the longest found wins
            start = tf.maximum(length - n, 0)
            entry = self.table.lookup(tf.strings.substr(tokens, start, tf.fill(tf.shape(start), n)))
            named = tf.gather(self.ending_product, self.rows(entry, self.ending_product))
            ending = tf.where(latin & (length > n) & (named >= 0), named, ending)
        whole = self.field(alone, HEAD)
        chinese = tf.where(run_end, whole, -1)
        english = tf.where(latin & (whole >= 0), whole, tf.where(latin, ending, -1))
        return chinese, english, tf.where(han, "…" + tokens, tokens)

    def words(self, tokens, chosen, span):
        """The chosen tokens as words: Han characters of one span (or of no span) joined, the
        rest separated by a space."""
        han = tf.strings.regex_full_match(tokens, r"\p{Han}")
        joined = (shift_right(chosen, 1, False) & han & shift_right(han, 1, False)
                  & tf.equal(span, shift_right(span, 1, -2)))
        pieces = tf.where(chosen, tf.where(joined, "", " ") + tokens, "")
        return tf.strings.strip(tf.strings.reduce_join(pieces, axis=1))

    def __call__(self, prompts):
        prompts = tf.convert_to_tensor(prompts, tf.string)
        tokens = tf.strings.split(reader_text(prompts)).to_tensor("", shape=[None, MAX_TOKENS])
        read = self.spans(tokens)
        read.update(self.products_at(read))
        read.update(self.roles(read))
        products, colors_, described = self.parts(read)
        found = tf.reduce_any(products >= 0, axis=1)
        style = self.first(read["is_style"], self.field(read["entry"], STYLE))
        style_word = tf.gather(self.style_words, self.rows(style, self.style_words))
        lead = tf.where(style >= 0, style_word + " ", "")
        drawn = tf.strings.reduce_join(tf.gather(self.product_texts, self.rows(
            products, self.product_texts)), axis=1, separator=" and ")
        drawn = tf.strings.regex_replace(drawn, r"(?: and )+$", "")
        ignored, residue, has_word = self.leftovers(read, products)
        drawable = found | has_word
        parts = tf.strings.reduce_join(described, axis=1, separator=" + ")
        parts = tf.strings.regex_replace(parts, r"(?: \+ )+$", "")
        style_note = tf.where(style >= 0, " · " + style_word + " style", "")
        words_note = tf.strings.join(["the words “", residue, "” (no catalogue product named)"])
        drawn_as = tf.where(found, parts, tf.where(has_word, words_note, "")) + style_note
        return {"text": tf.where(found, lead + drawn, tf.where(has_word, lead + residue,
                                                                prompts)),
                "drawable": drawable, "found": found, "products": products, "colors": colors_,
                "drawn_as": tf.where(drawable, drawn_as, ""), "ignored": ignored}

    def spans(self, tokens):
        """The matched spans of tokens [B, T] and what the reading needs of them: each
        place's entry, span length and span start (-1: none), the entry of each token alone,
        connectors and the groups they cut."""
        present = tokens != ""
        position = tf.broadcast_to(tf.range(MAX_TOKENS)[None], tf.shape(tokens))
        entry, length, alone = self.match(tokens)
        span = tf.fill(tf.shape(tokens), -1)  # the start of each token's span
        for k in range(self.longest):
            span = tf.where(shift_right((entry >= 0) & (length > k), k, False), position - k,
                            span)
        connector = present & (span < 0) & (self.field(alone, CONNECTS) > 0)
        group = tf.cumsum(tf.cast(connector, tf.int32), axis=1)
        return {"tokens": tokens, "present": present, "position": position, "entry": entry,
                "length": length, "alone": alone, "span": span, "connector": connector,
                "group": group, "same_group": tf.equal(group[:, :, None], group[:, None, :]),
                "after": position[:, None, :] > position[:, :, None]}  # [b, i, j]: j after i

    def products_at(self, read):
        """The product named at each place (-1: none): a matched phrase's, or a head word's
        (`heads`): a compound's head character names its product (派克服: coat, not 派, a
        pie); a prompt that names no product otherwise is read by its English head words.
        With whether it is a kin and the words shown for it."""
        entry = read["entry"]
        unread = read["present"] & (read["span"] < 0) & ~read["connector"]
        chinese, english, head_words = self.heads(read["tokens"], unread, read["alone"])
        product = tf.where(chinese >= 0, chinese, self.field(entry, PRODUCT))
        by_head = (chinese >= 0) | (~tf.reduce_any(product >= 0, axis=1, keepdims=True)
                                    & (english >= 0))
        return {"product": tf.where(by_head & (chinese < 0), english, product),
                "by_head": by_head, "kin_at": by_head | (self.field(entry, KIN) > 0),
                "surface_at": tf.where(by_head, head_words, tf.gather(
                    self.shown_keys, self.rows(entry, self.shown_keys)))}

    def roles(self, read):
        """Which places are colours, products, styles and the parts drawn: a group's last
        product (a caption term only where its group, then the prompt, names nothing
        stronger), each product once, at most MAX_PARTS, ranked in order."""
        entry, product = read["entry"], read["product"]
        color = self.field(entry, COLOR)

        def later_in_group(flags):  # [B, T]: a flagged place after i in i's group
            return tf.reduce_any(read["same_group"] & read["after"] & flags[:, None, :], axis=2)

        next_is_product = shift_left(product >= 0, 1, False)
        is_color = ((color >= 0) & ((product < 0) | later_in_group(product >= 0))
                    & ((self.field(entry, NEEDS_PRODUCT) == 0) | next_is_product))
        is_product = (product >= 0) & ~is_color
        weak = is_product & (self.field(entry, WEAK) > 0) & ~read["by_head"]
        strong = is_product & ~weak
        in_group = tf.reduce_any(read["same_group"] & strong[:, None, :], axis=2)
        candidate = strong | (weak & ~in_group)
        head = candidate & ~later_in_group(candidate)
        head &= ~weak | ~tf.reduce_any(head & strong, axis=1, keepdims=True)
        before = tf.transpose(read["after"], [0, 2, 1])  # [b, i, j]: j before i
        repeat = tf.reduce_any(before & head[:, None, :]
                               & tf.equal(product[:, :, None], product[:, None, :]), axis=2)
        part = head & ~repeat
        rank = tf.cumsum(tf.cast(part, tf.int32), axis=1)
        return {"color": color, "is_color": is_color, "is_product": is_product,
                "is_style": (self.field(entry, STYLE) >= 0) & ~is_color & ~is_product,
                "part": part & (rank <= MAX_PARTS), "rank": rank}

    def parts(self, read):
        """(products int32 [B, MAX_PARTS], their colours, their descriptions string [B,
        MAX_PARTS]): each part's product and the colour of its group; a prompt's one colour
        goes to its one product wherever the connectors put it."""
        color, is_color, group = read["color"], read["is_color"], read["group"]
        products, colors_, described = [], [], []
        for slot in range(MAX_PARTS):
            here = read["part"] & tf.equal(read["rank"], slot + 1)
            product = self.first(here, read["product"])
            own = self.first(is_color & tf.equal(group, self.first(here, group)[:, None]), color)
            colors_.append(tf.where(product >= 0, own, -1))
            products.append(product)
            kin = tf.reduce_any(here & read["kin_at"], axis=1)
            surface = tf.strings.reduce_join(tf.where(here, read["surface_at"], ""), axis=1)
            described.append(self.describe(product, colors_[-1], kin, surface))
        products, colors_ = tf.stack(products, 1), tf.stack(colors_, 1)
        count = tf.reduce_sum(tf.cast(products >= 0, tf.int32), axis=1)
        lone = (count == 1) & (colors_[:, 0] < 0)
        first = tf.where(lone | (count == 0), self.first(is_color, color), colors_[:, 0])
        return products, tf.concat([first[:, None], colors_[:, 1:]], 1), tf.stack(described, 1)

    def leftovers(self, read, products):
        """(the words read as naming nothing drawn, the words of no phrase (a prompt with no
        product is drawn from them), whether any of those is a product word) of each prompt."""
        entry, product, present = read["entry"], read["product"], read["present"]
        drawn = tf.reduce_any(tf.equal(product[:, :, None], products[:, None, :])
                              & (products[:, None, :] >= 0), axis=2)
        used_start = read["part"] | read["is_color"] | read["is_style"] | (
            read["is_product"] & drawn)
        used = (self.spread(used_start & (entry >= 0), read["length"])
                | (read["part"] & read["by_head"]))
        unread = present & (read["span"] < 0) & ~read["connector"]
        return (self.words(read["tokens"], present & ~used & ~read["connector"], read["span"]),
                self.words(read["tokens"], unread, read["span"]),
                tf.reduce_any(unread & (self.field(read["alone"], WORD) > 0), axis=1))

    @staticmethod
    def first(flags, values):
        """values at the first true place of each row of flags [B, T] (-1 where none)."""
        at = tf.argmax(tf.cast(flags, tf.int32), axis=1, output_type=tf.int32)
        return tf.where(tf.reduce_any(flags, axis=1), tf.gather(values, at, batch_dims=1), -1)

    @staticmethod
    def rows(index, table):
        """Indices into a table whose last row is empty: -1 reads that row."""
        return tf.where(index >= 0, index, tf.shape(table)[0] - 1)

    def describe(self, product, color, kin, surface):
        """"coat (nearest kin of 羽绒服) · black" for one part of each prompt ("" for none)."""
        name = tf.gather(self.product_names, self.rows(product, self.product_names))
        note = tf.where(kin, " (nearest kin of " + surface + ")", "")
        tint = tf.where(color >= 0, " · " + tf.gather(self.color_names,
                                                       self.rows(color, self.color_names)), "")
        return tf.where(product >= 0, name + note + tint, "")

    def read(self, prompts):
        """`__call__` eagerly, as Python: one dict a prompt with "text", "drawable",
        "drawn_as", "ignored" and the "colors" of its parts."""
        out = self(tf.constant(list(prompts)))  # eager: ~0.2 s a call, less than a trace
        return [{"text": out["text"][i].numpy().decode("utf-8"),
                 "drawable": bool(out["drawable"][i]), "found": bool(out["found"][i]),
                 "drawn_as": out["drawn_as"][i].numpy().decode("utf-8"),
                 "ignored": out["ignored"][i].numpy().decode("utf-8"),
                 "colors": [int(c) for c in out["colors"][i]]} for i in range(len(prompts))]


def understood_line(reading):
    """The line a person reads: "drawn as: coat · black — ignored: 限时特惠 新款"."""
    line = f"drawn as: {reading['drawn_as']}"
    return line + (f" — ignored: {reading['ignored']}" if reading["ignored"] else "")


def reading_notes(prompt, reading):
    """Warnings for a prompt as read: what cleaning changed in it, and a reader's cut
    (`MAX_TOKENS` tokens, `MAX_TEXT_CHARACTERS` characters)."""
    shown_prompt = repr(prompt if len(prompt) <= 60 else prompt[:60] + "...")
    _, cleaned = clean_text(prompt)
    notes = [f"prompt {shown_prompt}: {cleaned}"] if cleaned else []
    tokens = tf.strings.split(reader_text(tf.constant([prompt]))).flat_values.shape[0]
    if tokens > MAX_TOKENS:
        notes.append(f"prompt {shown_prompt} has {tokens} words; only the first {MAX_TOKENS} "
                     "are read")
    return notes


def describe_refusal(prompt, reading):
    """Why a prompt that names no product is not drawn, in one line."""
    shown_prompt = repr(prompt if len(prompt) <= 60 else prompt[:60] + "...")
    ignored = reading["ignored"]
    ignored = ignored if len(ignored) <= 60 else ignored[:60] + "..."
    what = f" (read only: {ignored})" if ignored else ""
    return (f"prompt {shown_prompt} names no product this model can draw{what}; name one, "
            "e.g. \"黑色羽绒服\" or \"running shoes\"")
