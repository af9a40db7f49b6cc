import numpy as np
import pytest

from adgan.training import losses


def test_hinge_losses_and_penalty_values():
    ones, minus = np.ones(4, "float32"), -np.ones(4, "float32")
    assert float(losses.discriminator_hinge_loss(ones, minus, minus)) == 0.0
    assert float(losses.discriminator_hinge_loss(minus, ones, ones)) == pytest.approx(4.0)
    assert float(losses.generator_hinge_loss(np.array([1.0, 3.0]))) == -2.0
    image_grads = np.zeros((2, 2, 2, 1), "float32")
    sentence_grads = np.array([[1.0, 0.0], [0.0, 0.0]], "float32")
    # norms 1 and 0 -> mean(norm^6) = 0.5, times weight 2
    assert float(losses.matching_aware_gradient_penalty(image_grads, sentence_grads)) == \
        pytest.approx(1.0, rel=1e-4)


def test_contrastive_loss_rewards_matching_pairs():
    codes = np.eye(4, dtype="float32")
    assert float(losses.contrastive_loss(codes, codes * 3.0)) < 1e-3  # scale-free, matched
    # Every image equally close to every sentence: chance level, ln(batch).
    assert float(losses.contrastive_loss(np.ones((4, 2), "float32"), np.ones((4, 2), "float32"))) \
        == pytest.approx(np.log(4.0), rel=1e-4)
    assert float(losses.contrastive_loss(codes, codes[::-1])) > np.log(4.0)


def test_contrastive_loss_counts_every_rendering_of_a_concept_as_positive():
    # rows 0 and 1 are two renderings of one concept: their codes are the same
    codes = np.array([[1, 0], [1, 0], [0, 1]], "float32")
    one_positive = float(losses.contrastive_loss(codes, codes))
    concept = float(losses.contrastive_loss(codes, codes, concept_ids=np.array([0, 0, 1])))
    # with one positive, rows 0 and 1 cannot tell each other apart (ln 2 each way)
    assert one_positive == pytest.approx(2 / 3 * np.log(2.0), abs=1e-3)
    assert concept < 1e-3


def test_mode_seeking_loss_falls_as_two_draws_differ():
    noise = np.zeros((2, 4), "float32"), np.ones((2, 4), "float32")
    same = np.zeros((2, 3, 3, 3), "float32")
    apart = np.ones((2, 3, 3, 3), "float32")
    assert float(losses.mode_seeking_loss(same, apart, *noise)) == pytest.approx(1.0, rel=1e-3)
    assert float(losses.mode_seeking_loss(same, same, *noise)) > 1e4  # one image for two noises


def test_reconstruction_loss_resizes_the_target():
    target = np.full((2, 8, 8, 3), 0.5, "float32")
    assert float(losses.reconstruction_loss(np.full((2, 4, 4, 3), 0.5, "float32"), target)) \
        == pytest.approx(0.0, abs=1e-6)
    assert float(losses.reconstruction_loss(np.zeros((2, 4, 4, 3), "float32"), target)) \
        == pytest.approx(0.5)
