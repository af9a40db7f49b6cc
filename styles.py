"""Drawing style as a condition: the words that ask for a look ("3d handbag", "立体 手提包").

A manifest with a `style` column may come with `styles.csv` beside it (the shipped
set has one, written by `data/build_emoji.py`): one row per style with the English
and the Chinese word that asks for it. In training, the loader puts a row's style
word in front of its caption for about half of the examples (`add_style_word`, in
the caption's language), so the text encoder learns the words while a prompt
without one still draws any style. `style_prompt` (generate.py --style) does the
same to a prompt.
"""

import csv
import os

import tensorflow as tf

from helpers import HAN_CHARACTERS, has_han

STYLES_FILE = "styles.csv"  # beside the manifest
STYLE_WORD_RATE = 0.5  # fraction of training examples whose caption names the style


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
