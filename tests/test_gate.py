import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import gate as gating
import generate

# A stand-in for G and D: each candidate's "image" is filled with its noise's first
# value, and the judge's logit is that value, so scores are known in advance.
NOISE_DIM = 4
PLAIN = gating.Gate(slope=1.0, intercept=0.0, max_log_odds=0.0, shift=0.0, min_score=0.5)


def fake_draw(noise, sentences):
    return tf.ones([tf.shape(noise)[0], 2, 2, 3]) * noise[:, :1, None, None]


def fake_judge(images, sentences):
    return images[:, 0, 0, 0]


def sample(gate, budgets, seeds=(3, 4, 5), chunk=gating.CHUNK):
    out = gating.gated_sample(tf.zeros([len(seeds), 2]), tf.constant(seeds, tf.int64),
                              tf.constant(budgets), fake_draw, fake_judge, gate, NOISE_DIM,
                              image_size=2, chunk=chunk)
    return {k: v.numpy() for k, v in out.items()}


def candidate_logits(seed, count):
    noise, _ = gating.candidate_draws(tf.fill([count], tf.constant(seed, tf.int64)),
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
    strict = gating.Gate(1.0, 0.0, 0.0, 0.0, min_score=1.0)
    out = sample(strict, [5, 1, 3])
    assert not out["accepted"].any() and list(out["tries"]) == [5, 1, 3]
    for row, (seed, budget) in enumerate(zip((3, 4, 5), (5, 1, 3))):
        assert np.allclose(out["images"][row], candidate_logits(seed, budget).max())


def test_results_do_not_depend_on_the_chunk_size():
    drs = gating.Gate(1.0, 0.0, max_log_odds=2.0, shift=-1.0)
    one, four = sample(drs, [6, 2, 9], chunk=1), sample(drs, [6, 2, 9], chunk=4)
    for name in one:
        np.testing.assert_allclose(one[name], four[name])


def test_logistic_fit_recovers_the_bayes_log_odds():
    rng = np.random.default_rng(0)
    # real ~ N(1, 1), fake ~ N(-1, 1): the log-odds are exactly 2x
    slope, intercept = gating.fit_logistic(rng.normal(1, 1, 20000), rng.normal(-1, 1, 20000))
    assert slope == pytest.approx(2.0, abs=0.1) and intercept == pytest.approx(0.0, abs=0.05)
    # perfectly separated classes still give a finite fit
    assert np.isfinite(gating.fit_logistic(np.array([5.0, 6.0]), np.array([-5.0, -6.0]))).all()


@pytest.mark.parametrize("gamma", [0.1, 0.5, 0.9])
def test_drs_shift_gives_the_target_acceptance_rate(gamma):
    log_odds = np.random.default_rng(1).normal(-1, 2, 500)
    shift = gating.drs_shift(log_odds, log_odds.max(), gamma)
    ratio = gating.drs_log_ratio(log_odds, log_odds.max()).numpy()
    assert np.mean(1 / (1 + np.exp(shift - ratio))) == pytest.approx(gamma, abs=1e-3)
    with pytest.raises(ValueError, match="gamma"):
        gating.drs_shift(log_odds, log_odds.max(), 0.0)


def test_run_calibration_is_saved_and_reproducible(trained_run):
    saved = gating.load_calibration(trained_run)
    assert {"slope", "intercept", "max_log_odds", "shift", "gamma", "auc_real_vs_fake",
            "fake_log_odds"} <= set(saved)
    again = gating.calibrate_run(generate.load_run(trained_run), trained_run)
    assert again["slope"] == pytest.approx(saved["slope"], rel=1e-4)


def test_gated_images_score_higher_than_ungated(trained_run):
    gan = generate.load_run(trained_run)
    gate = gating.Gate.from_calibration(gating.load_calibration(trained_run))
    prompts = ["连衣裙", "jeans", "披萨", "hamburger", "手机", "laptop"]
    gated = generate.generate_images(gan, prompts, 6, seed=0, gate=gate, max_tries=8)
    ungated = generate.generate_images(gan, prompts, 6, seed=0, gate=gate, max_tries=1)
    assert (gated["tries"] >= 1).all() and (gated["tries"] <= 8).all()
    threshold = float(np.median(ungated["score"]))
    strict = gating.Gate.from_calibration(gating.load_calibration(trained_run),
                                          min_score=threshold)
    kept = generate.generate_images(gan, prompts, 6, seed=0, gate=strict, max_tries=8)
    assert (kept["score"][kept["accepted"]] >= threshold).all()
    assert kept["accepted"].mean() > 0.5  # each try passes half the time
    # Each kept image is its first candidate (if that passed), a later passing one, or the
    # best of 8: never below the ungated (first) candidate, and above it somewhere.
    assert (kept["score"] >= ungated["score"] - 1e-6).all()
    assert kept["score"].mean() > ungated["score"].mean()


def test_generate_prints_gate_statistics(trained_run, tmp_path, capsys):
    generate.main(["--run", trained_run, "--out", str(tmp_path / "g.png"), "-n", "3",
                   "--max-tries", "4", "连衣裙"])
    assert re.search(r"'连衣裙': [0-3]/3 accepted in \d+ tries \(acceptance \d+%\), "
                     r"scores( \d\.\d\d){3}\n", capsys.readouterr().out)
    generate.main(["--run", trained_run, "--out", str(tmp_path / "g.png"), "-n", "2",
                   "--no-gate", "jeans"])
    assert re.search(r"'jeans': gate off, scores( \d\.\d\d){2}\n", capsys.readouterr().out)


def test_compare_gate_grid_puts_ungated_left_of_gated(trained_run, tmp_path, capsys):
    out = str(tmp_path / "cmp.png")
    generate.main(["--run", trained_run, "--out", out, "-n", "2", "--compare-gate",
                   "连衣裙", "jeans"])
    assert "mean score ungated" in capsys.readouterr().out
    # 2 rows x (2 ungated + gap + 2 gated) cells of 16 pixels with 2-pixel padding
    assert np.asarray(Image.open(out)).shape == (2 * 18 + 2, 5 * 18 + 2, 3)
    with pytest.raises(SystemExit):
        generate.main(["--run", trained_run, "--out", out, "--no-gate", "--compare-gate", "x"])


def test_generate_without_calibration_asks_for_it(trained_run, tmp_path, capsys):
    run = tmp_path / "run"
    os.makedirs(run / "final")
    for name in ("config.json",):
        (run / name).write_bytes(open(os.path.join(trained_run, name), "rb").read())
    os.link(os.path.join(trained_run, "final", "model.keras"), run / "final" / "model.keras")
    with pytest.raises(SystemExit) as exit_info:
        generate.main(["--run", str(run), "--out", str(tmp_path / "g.png"), "dress"])
    assert exit_info.value.code == 1 and "python gate.py --run" in capsys.readouterr().err
    generate.main(["--run", str(run), "--out", str(tmp_path / "g.png"), "--no-gate", "dress"])
    assert gating.main(["--run", str(run)])["pairs"] > 0
    assert json.load(open(run / "final" / "calibration.json"))["split"] == "train"


def test_sampler_batches_do_not_change_results(trained_run):
    gan = generate.load_run(trained_run)
    gate = gating.Gate.from_calibration(gating.load_calibration(trained_run))
    texts, seeds, budgets = ["连衣裙", "jeans", "披萨", "手机", "laptop"], [1, 2, 3, 4, 5], [8] * 5
    whole = gating.GatedSampler(gan, gate)(texts, seeds, budgets)
    pieces = gating.GatedSampler(gan, gate, batch_size=2)(texts, seeds, budgets)
    for name in whole:
        np.testing.assert_allclose(whole[name], pieces[name], atol=1)
