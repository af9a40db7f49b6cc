import numpy as np
import tensorflow as tf

from adgan.data import colors
from conftest import shipped_rows, write_manifest
import data_loader


def test_recolouring_real_products_reads_back_as_each_colour(tmp_path):
    manifest = write_manifest(str(tmp_path), shipped_rows(8, ("dress", "jeans", "handbag",
                                                              "running shoe")))
    frame = data_loader.read_manifest(manifest)
    for path in frame["path"]:
        rgba = data_loader.load_image_rgba(path, 32)
        assert (rgba[..., :3] == data_loader.load_image(path, 32)).all()
        recoloured = np.stack([colors.recolor(rgba, k).numpy() for k in range(len(colors.PALETTE))])
        assert (colors.dominant_color(recoloured) == np.arange(len(colors.PALETTE))).all()
        background = rgba[..., 3] == 0
        assert (recoloured[:, background] == 255).all()  # only the product changes


def test_blank_image_has_no_colour_and_grey_pixels_do_not_count():
    white = np.full((2, 8, 8, 3), 255, np.uint8)
    white[1, :4] = 128  # mid grey: neither a colour nor black
    assert (colors.dominant_color(white) == -1).all()
    red = white.copy()
    red[1, 6:] = (200, 10, 10)
    assert colors.dominant_color(red)[1] == colors.COLOR_NAMES.index("red")


def test_colour_words_in_both_languages():
    assert colors.color_prompt("dress", 0) == "red dress"
    assert colors.color_prompt("连衣裙", 0) == "红色连衣裙"
    assert colors.color_prompt("T恤", colors.BLACK) == "黑色T恤"
    for text in ("dress", "连衣裙", "clothing | dress"):
        for k in (0, 4, colors.BLACK):
            made = colors.add_color_word(tf.constant(text), tf.constant(k, tf.int64))
            assert made.numpy().decode("utf-8") == colors.color_prompt(text, k)
    assert colors.mentions_color("Red Dress") and colors.mentions_color("黑色羽绒服")
    assert not colors.mentions_color("lowered flag") and not colors.mentions_color("连衣裙")
    assert {"red", "红色", "black", "黑色"} <= set(colors.color_words())
