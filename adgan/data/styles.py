"""Drawing style as a condition: the words that ask for a look ("3d handbag", "立体 手提包").

A manifest with a `style` column may come with `styles.csv` beside it (the shipped
set has one, written by `data/build_emoji.py`): one row per style with the English
and the Chinese word that asks for it. In training, the loader puts a row's style
word in front of its caption for about half of the examples (`add_style_word`, in
the caption's language), so the text encoder learns the words while a prompt
without one still draws any style. `style_prompt` (generate.py --style) does the
same to a prompt.

A real product comes in every style, so its renderings differ mostly by style; a
prompt without a style word, though, draws much the same look every time. Drawing
therefore varies the style by default (`vary_style`): a prompt that names no style
gets one of the model's style words, chosen from the prompt and its seed so that
consecutive seeds walk through every style. On the shipped model's seen prompts this
raised the evaluator's within-prompt diversity from 0.43 to 0.53 (real 0.65) and
lowered R-precision from 0.75 to 0.72 (ceiling 0.86); docs/model-card.md.
"""

import csv
import math
import os
import re

import tensorflow as tf

from adgan.helpers import HAN_CHARACTERS, has_han

STYLES_FILE = "styles.csv"  # beside the manifest
STYLE_WORD_RATE = 0.5  # fraction of training examples whose caption names the style
VARIED = "varied"  # generate.py --style: each draw names a style in turn (the default)
NONE = "none"  # generate.py --style: prompts as typed


class StyleError(ValueError):
    """A styles table that cannot be read, or a style a model does not know."""


def read_style_words(manifest):
    """{style: (English word, Chinese word)} from `styles.csv` beside `manifest`; {} if none.

    Raises `StyleError` naming the file when it lacks a column or a word.
    """
    file = os.path.join(os.path.dirname(os.path.abspath(manifest)), STYLES_FILE)
    if not os.path.exists(file):
        return {}
    try:
        with open(file, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise StyleError(f"{file}: cannot read the styles table ({error})") from error
    words = {}
    for number, row in enumerate(rows, start=2):
        values = [(row.get(column) or "").strip() for column in ("style", "word_en", "word_zh")]
        if not all(values):
            raise StyleError(f"{file}: line {number} needs style, word_en and word_zh")
        words[values[0]] = (values[1], values[2])
    return words


def find_style(style, style_words):
    """The style named `style` or one of its words ("fluent-3d", "3d", "立体" -> "fluent-3d")."""
    if style in style_words:
        return style
    for name, words in style_words.items():
        if style.strip().lower() in (word.lower() for word in words):
            return name
    known = ", ".join(f"{name} ({' / '.join(words)})" for name, words in style_words.items())
    raise StyleError(f"unknown style {style!r}; this model knows "
                     f"{known or 'none: it was trained without style words'}")


def style_prompt(text, style, style_words):
    """"handbag", "fluent-3d" -> "3d handbag"; "手提包" -> "立体 手提包" (Python strings).

    `style` is a style's name or one of its words; `StyleError` for one the model lacks.
    """
    english, chinese = style_words[find_style(style, style_words)]
    return f"{chinese} {text}" if has_han(text) else f"{english} {text}"


def add_style_word(text, english, chinese):
    """`style_prompt` in TensorFlow on scalar strings; an empty word leaves `text` alone."""
    is_chinese = tf.strings.regex_full_match(text, f"(?s).*[{HAN_CHARACTERS}].*")
    word = tf.where(is_chinese, chinese, english)
    return tf.where(tf.strings.length(word) > 0, word + " " + text, text)


def names_style_pattern(style_words):
    """An RE2 pattern that matches a text naming one of the styles: an English word as a
    whole word, any case ("3D handbag"), a Chinese word anywhere ("立体手提包")."""
    english = sorted({re.escape(words[0]) for words in style_words.values()})
    chinese = sorted({re.escape(words[1]) for words in style_words.values()})
    return f"(?is).*(\\b({'|'.join(english)})\\b|{'|'.join(chinese)}).*"


def style_stride(count):
    """The step through `count` sorted styles between consecutive seeds: about a third of
    them, coprime with `count` so that `count` seeds visit every style once (8 -> 3)."""
    return next((step for step in range(max(1, round(count / 3)), count)
                 if math.gcd(step, count) == 1), 1)


def vary_style(prompts, seeds, style_words):
    """Prompts string[B] with a style word put in front of each that names none (int64 seeds [B]).

    The style of (text, seed) is style number (hash(text) + seed * stride) mod S of
    `sorted(style_words)` (`style_stride`), so the draws seed, seed + 1, ... of one
    prompt name S different styles in turn, and different prompts start at different
    styles. The stride keeps one family's styles, whose names sort together (fluent,
    fluent-3d, fluent-flat), from being drawn back to back: four draws from eight
    styles show at least three families. Prompts that already name a style are left
    alone; with no style words nothing changes.
    """
    prompts = tf.convert_to_tensor(prompts, tf.string)
    if not style_words:
        return prompts
    names = sorted(style_words)
    english = tf.constant([style_words[name][0] for name in names])
    chinese = tf.constant([style_words[name][1] for name in names])
    index = tf.math.floormod(tf.strings.to_hash_bucket_fast(prompts, len(names))
                             + tf.cast(seeds, tf.int64) * style_stride(len(names)), len(names))
    styled = add_style_word(prompts, tf.gather(english, index), tf.gather(chinese, index))
    named = tf.strings.regex_full_match(prompts, names_style_pattern(style_words))
    return tf.where(named, prompts, styled)
