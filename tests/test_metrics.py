import numpy as np
import pytest

from adgan.evaluation import metrics


def test_frechet_distance_of_known_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2000, 3))
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = np.array([1.0, 2.0, 0.0])
    assert metrics.frechet_distance(a, a + shift) == pytest.approx(5.0, rel=1e-6)
    # N(0, I) vs N(0, 4I) in 3-D: 3 * (1 + 4 - 2 * 2) = 3
    b = rng.normal(size=(20000, 3)) * 2.0
    assert metrics.frechet_distance(rng.normal(size=(20000, 3)), b) == pytest.approx(3.0, abs=0.1)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(1)
    same = metrics.kernel_inception_distance(rng.normal(size=(300, 8)), rng.normal(size=(300, 8)))
    other = metrics.kernel_inception_distance(rng.normal(size=(300, 8)),
                                               rng.normal(1.0, 1.0, size=(300, 8)))
    assert abs(same[0]) < 0.05 and other[0] > 10 * max(abs(same[0]), same[1])


def test_r_precision_bounds_and_diversity():
    rng = np.random.default_rng(2)
    prompts = rng.normal(size=(200, 16))
    prompts /= np.linalg.norm(prompts, axis=1, keepdims=True)
    concepts = np.arange(200) // 2  # two prompts (languages) per concept
    true = np.arange(200)
    assert metrics.r_precision(prompts, true, prompts, concepts)[0] == 1.0
    noise = rng.normal(size=(200, 16))
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    assert metrics.r_precision(noise, true, prompts, concepts, repeats=20)[0] < 0.05
    features = np.repeat(rng.normal(size=(5, 4)), 3, axis=0)  # 3 identical copies per group
    assert metrics.diversity(features, np.repeat(np.arange(5), 3)) == pytest.approx(0.0)
    assert metrics.diversity(rng.normal(size=(15, 4)), np.repeat(np.arange(5), 3)) > 0.5


def test_color_scores_count_hits_per_colour():
    from adgan.data import colors

    images = np.full((3, 4, 4, 3), 255, np.uint8)
    images[0, 1:3, 1:3] = (220, 20, 20)  # red
    images[1, 1:3, 1:3] = (20, 60, 220)  # blue
    images[2, 1:3, 1:3] = (20, 20, 20)   # black
    red, blue, black = (colors.COLOR_NAMES.index(c) for c in ("red", "blue", "black"))
    scores = metrics.color_scores(images, [red, blue, red])
    assert scores["accuracy"] == pytest.approx(2 / 3) and scores["images"] == 3
    assert scores["per_color"]["red"] == 0.5 and scores["per_color"]["blue"] == 1.0
    assert scores["per_color"]["green"] is None  # no green prompt: no figure


def test_two_object_rate_needs_both_products_one_a_half():
    concepts = np.eye(8)  # concept k's text vector: axis k
    both = np.stack([concepts[[2, 5]], concepts[[5, 2]], concepts[[2, 2]], concepts[[2, 7]]])
    pairs = np.array([[2, 5], [2, 5], [2, 5], [2, 5]])
    assert metrics.two_object_rate(both[:2], pairs[:2], concepts, candidates=8) == 1.0
    assert metrics.two_object_rate(both[2:3], pairs[2:3], concepts, candidates=8) == 0.0  # A only
    assert metrics.two_object_rate(both[3:], pairs[3:], concepts, candidates=8) == 0.0  # A, C
    assert metrics.two_object_rate(both, pairs, concepts, candidates=8) == 0.5
