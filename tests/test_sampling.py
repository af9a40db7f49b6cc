import numpy as np
import pytest
import tensorflow as tf

from adgan.drawing import sampling
from adgan.drawing.calibrate import load_gate
from adgan.drawing.gate import Gate, drs_log_ratio, drs_shift, fit_logistic
from adgan.runs.artifacts import load_model

# A stand-in for G and D: each candidate's "image" is filled with its noise's first
# value, and the judge's logit is that value, so scores are known in advance.
NOISE_DIM = 4
PLAIN = Gate(slope=1.0, intercept=0.0, max_log_odds=0.0, shift=0.0, min_score=0.5)


def fake_draw(noise, sentences):
    return tf.ones([tf.shape(noise)[0], 2, 2, 3]) * noise[:, :1, None, None]


def fake_judge(images, sentences):
    return images[:, 0, 0, 0]


def sample(gate, budgets, seeds=(3, 4, 5), chunk=sampling.CHUNK):
    out = sampling.gated_sample((tf.zeros([len(seeds), 2]),), tf.constant(seeds, tf.int64),
                              tf.constant(budgets), fake_draw, fake_judge, gate, NOISE_DIM,
                              image_size=2, chunk=chunk)
    return {k: v.numpy() for k, v in out.items()}


def candidate_logits(seed, count):
    noise, _ = sampling.candidate_draws(tf.fill([count], tf.constant(seed, tf.int64)),
                                      tf.range(count, dtype=tf.int64), NOISE_DIM)
    return noise[:, 0].numpy()


def test_threshold_gate_keeps_the_first_passing_candidate_else_the_best():
    out = sample(PLAIN, [8, 8, 8])
    for row, seed in enumerate((3, 4, 5)):
        logits = candidate_logits(seed, 8)
        passing = np.flatnonzero(logits >= 0.0)  # score >= 0.5 <=> logit >= 0
        if len(passing):
            k = passing[0]
            assert out["accepted"][row] and out["tries"][row] == k + 1
        else:
            k = int(np.argmax(logits))
            assert not out["accepted"][row] and out["tries"][row] == 8
        assert out["score"][row] == pytest.approx(1 / (1 + np.exp(-logits[k])), rel=1e-5)
        assert np.allclose(out["images"][row], logits[k])


def test_nothing_passes_gives_the_best_candidate_not_accepted():
    strict = Gate(1.0, 0.0, 0.0, 0.0, min_score=1.0)
    out = sample(strict, [5, 1, 3])
    assert not out["accepted"].any() and list(out["tries"]) == [5, 1, 3]
    for row, (seed, budget) in enumerate(zip((3, 4, 5), (5, 1, 3))):
        assert np.allclose(out["images"][row], candidate_logits(seed, budget).max())


def test_results_do_not_depend_on_the_chunk_size():
    drs = Gate(1.0, 0.0, max_log_odds=2.0, shift=-1.0)
    one, four = sample(drs, [6, 2, 9], chunk=1), sample(drs, [6, 2, 9], chunk=4)
    for name in one:
        np.testing.assert_allclose(one[name], four[name])


def test_logistic_fit_recovers_the_bayes_log_odds():
    rng = np.random.default_rng(0)
    # real ~ N(1, 1), fake ~ N(-1, 1): the log-odds are exactly 2x
    slope, intercept = fit_logistic(rng.normal(1, 1, 20000), rng.normal(-1, 1, 20000))
    assert slope == pytest.approx(2.0, abs=0.1) and intercept == pytest.approx(0.0, abs=0.05)
    # perfectly separated classes still give a finite fit
    assert np.isfinite(fit_logistic(np.array([5.0, 6.0]), np.array([-5.0, -6.0]))).all()


@pytest.mark.parametrize("gamma", [0.1, 0.5, 0.9])
def test_drs_shift_gives_the_target_acceptance_rate(gamma):
    log_odds = np.random.default_rng(1).normal(-1, 2, 500)
    shift = drs_shift(log_odds, log_odds.max(), gamma)
    ratio = drs_log_ratio(log_odds, log_odds.max()).numpy()
    assert np.mean(1 / (1 + np.exp(shift - ratio))) == pytest.approx(gamma, abs=1e-3)
    with pytest.raises(ValueError, match="gamma"):
        drs_shift(log_odds, log_odds.max(), 0.0)


def test_gated_images_score_higher_than_ungated(trained_run):
    gan = load_model(trained_run)
    gate = load_gate(trained_run)
    prompts = ["连衣裙", "jeans", "披萨", "hamburger", "手机", "laptop"]
    gated = sampling.generate_images(gan, prompts, 6, seed=0, gate=gate, max_tries=8)
    ungated = sampling.generate_images(gan, prompts, 6, seed=0, gate=gate, max_tries=1)
    assert (gated["tries"] >= 1).all() and (gated["tries"] <= 8).all()
    threshold = float(np.median(ungated["score"]))
    strict = load_gate(trained_run, min_score=threshold)
    kept = sampling.generate_images(gan, prompts, 6, seed=0, gate=strict, max_tries=8)
    assert (kept["score"][kept["accepted"]] >= threshold).all()
    assert kept["accepted"].mean() > 0.5  # each try passes half the time
    # Each kept image is its first candidate (if that passed), a later passing one, or the
    # best of 8: never below the ungated (first) candidate, and above it somewhere.
    assert (kept["score"] >= ungated["score"] - 1e-6).all()
    assert kept["score"].mean() > ungated["score"].mean()


def test_sampler_batches_do_not_change_results(trained_run):
    gan, gate = load_model(trained_run), load_gate(trained_run)
    texts, seeds, budgets = ["连衣裙", "jeans", "披萨", "手机", "laptop"], [1, 2, 3, 4, 5], [8] * 5
    whole = sampling.GatedSampler(gan, gate)(texts, seeds, budgets)
    pieces = sampling.GatedSampler(gan, gate, batch_size=2)(texts, seeds, budgets)
    # the same candidates are drawn and judged: equal decisions, counts and pixels
    np.testing.assert_array_equal(whole["accepted"], pieces["accepted"])
    np.testing.assert_array_equal(whole["tries"], pieces["tries"])
    np.testing.assert_array_equal(whole["images"], pieces["images"])
    np.testing.assert_allclose(whole["score"], pieces["score"], rtol=1e-5)
    assert whole["tries"].dtype == np.int32 and whole["accepted"].dtype == bool


def test_ungated_keeps_the_first_candidate_and_scores_the_raw_logit(trained_run):
    gan = load_model(trained_run)
    out = sampling.generate_images(gan, ["jeans"], 3, seed=4, max_tries=8)
    assert out["accepted"].all() and (out["tries"] == 1).all()
    first = sampling.generate_images(gan, ["jeans"], 3, seed=4, gate=load_gate(trained_run))
    np.testing.assert_array_equal(out["images"], first["images"])
