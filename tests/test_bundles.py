import numpy as np
import pytest

from adgan.data import bundles


def product(color, size=32):
    """uint8 RGBA [S, S, 4]: a coloured disc (alpha 255) on transparent white."""
    yy, xx = np.mgrid[:size, :size]
    inside = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size * 0.4) ** 2
    image = np.full((size, size, 4), 255, np.uint8)
    image[..., :3] = np.where(inside[..., None], color, 255)
    image[..., 3] = np.where(inside, 255, 0)
    return image


RED, BLUE, GREEN = (220, 20, 20), (20, 20, 220), (20, 180, 20)


def mask(picture, color):
    return (np.abs(picture.astype(int) - color).sum(-1) < 60)


@pytest.mark.parametrize("layout", bundles.LAYOUTS)
@pytest.mark.parametrize("count", [2, 3])
def test_every_layout_shows_every_product_on_white(layout, count):
    colors = [RED, BLUE, GREEN][:count]
    picture = bundles.composite_products([product(c) for c in colors], layout, 64,
                              np.random.default_rng(0))
    assert picture.shape == (64, 64, 3) and picture.dtype == np.uint8
    assert (picture[0, 0] == 255).all() or (picture[-1, -1] == 255).all()  # a white canvas
    for color in colors:
        assert mask(picture, color).sum() > 64 * 64 * 0.03, (layout, color)


def test_side_by_side_puts_the_first_product_left():
    picture = bundles.composite_products([product(RED), product(BLUE)], "side_by_side", 64,
                              np.random.default_rng(1))
    red, blue = (np.flatnonzero(mask(picture, c).any(0)).mean() for c in (RED, BLUE))
    assert red < 32 < blue


def test_an_unknown_layout_is_refused():
    with pytest.raises(ValueError, match="layout must be one of"):
        bundles.composite_products([product(RED), product(BLUE)], "diagonal", 64, np.random.default_rng(0))


def test_captions_name_every_product_with_a_shoppers_connector():
    rng = np.random.default_rng(0)
    chinese = {bundles.bundle_caption(["咖啡", "蛋糕"], rng) for _ in range(40)}
    assert chinese == {"咖啡和蛋糕", "咖啡与蛋糕", "咖啡配蛋糕", "咖啡加蛋糕"}
    english = {bundles.bundle_caption(["coffee", "cake"], rng) for _ in range(40)}
    assert english == {"coffee and cake", "coffee with cake", "coffee & cake"}
    assert bundles.bundle_caption(["汉堡", "薯条", "可乐"], rng) in {
        f"汉堡、薯条{c}可乐" for c in bundles.CONNECTORS["zh"]}
    assert bundles.bundle_caption(["dress", "handbag", "hat"], rng).startswith("dress, handbag")


def test_held_out_pairs_are_fixed_symmetric_and_about_the_share():
    names = [f"concept {i}" for i in range(60)]
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    held = [p for p in pairs if bundles.is_held_out(*p)]
    assert all(bundles.is_held_out(b, a) for a, b in held)
    assert 0.07 < len(held) / len(pairs) < 0.13
    assert held == [p for p in pairs if bundles.is_held_out(*p)]  # the same every time


def test_sampled_bundles_keep_to_one_style_and_to_their_side_of_the_split():
    concepts = [f"c{i % 20}" for i in range(80)]
    styles = ["noto" if i < 40 else "twemoji" for i in range(80)]
    rng = np.random.default_rng(0)
    for held_out in (False, True):
        for count in (2, 3):
            for _ in range(30):
                rows = bundles.sample_bundle(concepts, styles, rng, count, held_out)
                chosen = [concepts[r] for r in rows]
                assert len(set(chosen)) == count and len({styles[r] for r in rows}) == 1
                pairs = [(a, b) for i, a in enumerate(chosen) for b in chosen[i + 1:]]
                assert any(bundles.is_held_out(a, b) for a, b in pairs) == held_out
    with pytest.raises(ValueError, match="no bundle of 2 distinct concepts"):
        bundles.sample_bundle(["only"] * 5, ["noto"] * 5, rng)


def test_halves_enlarge_each_side_product():
    picture = bundles.composite_products([product(RED), product(BLUE)], "side_by_side", 64,
                              np.random.default_rng(1))
    left, right = bundles.halves(picture[None])[0]
    assert left.shape == right.shape == (64, 64, 3)
    # each product fills much of its enlarged square (a quarter of the side: 16 px)
    assert mask(left, RED).sum() > 0.3 * 64 * 64 and mask(left, BLUE).sum() == 0
    assert mask(right, BLUE).sum() > 0.3 * 64 * 64 and mask(right, RED).sum() == 0


def test_measure_words_count_each_product():
    assert bundles.counted("热饮", "drink") == "一杯热饮"
    assert bundles.counted("跑鞋", "clothing") == "一双跑鞋"
    assert bundles.counted("钱包", "") == "一个钱包"
    assert bundles.counted("dress", "clothing") == "a dress"
    assert bundles.counted("apple", "food-fruit") == "an apple"


def source(seed=0):
    products = np.stack([product(c) for c in (RED, BLUE, GREEN, RED, BLUE, GREEN)])
    return bundles.BundleSource(products, ["apple", "sea", "leaf"] * 2, ["苹果", "海", "叶子"] * 2,
                                ["food-fruit", "", ""] * 2, ["noto"] * 3 + ["twemoji"] * 3,
                                {"noto": ("noto", "诺托"), "twemoji": ("flat", "扁平")}, seed)


def test_bundle_source_is_reproducible_and_names_what_it_shows():
    first = [source()(k) for k in range(40)]
    again = [source()(k) for k in range(40)]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1:] == b[1:]
    assert any(x[1] != y[1] for x, y in zip(first, [source(seed=1)(k) for k in range(40)]))
    names = {"apple": RED, "sea": BLUE, "leaf": GREEN, "苹果": RED, "海": BLUE, "叶子": GREEN}
    for picture, caption, style, style_id, concept_id in first:
        caption = caption.decode("utf-8")
        named = [n for n in names if n in caption]
        assert len(named) in (2, 3), caption
        for name in named:  # every product the caption names is in the picture
            assert mask(picture, names[name]).sum() > 20, caption
        assert style_id == ["noto", "twemoji"].index(style.decode())
        assert concept_id >= bundles.BUNDLE_ID_BASE
    captions = [x[1].decode("utf-8") for x in first]
    assert any(bundles.has_han(c) for c in captions) and not all(bundles.has_han(c) for c in captions)
    assert any(c.startswith(("一", "a ", "an ", "诺托 一", "扁平 一", "noto a", "flat a"))
               for c in captions)  # some count the products
