"""The discriminator gate: D's image-text logit -> a calibrated score, and the rule that
accepts a candidate (generate -> the discriminator judges -> generate again, sampling.py).

A gate is calibrated once after training (`adgan-calibrate`, calibrate.py): a logistic
fit of D's logit on real training pairs vs EMA-generator fakes turns the logit into a
score, P(real match), in [0, 1]. Two acceptance rules use it:

- DRS (Azadi et al., 2019, discriminator rejection sampling): accept with
  probability sigmoid(F - shift), F = d - log(1 - exp(d - eps)), d = the
  candidate's log-odds minus the largest log-odds seen on calibration fakes;
  `shift` is set so that a target fraction `gamma` of calibration fakes passes.
- a fixed threshold `min_score` on the score.
"""

import dataclasses

import numpy as np
import tensorflow as tf

DEFAULT_GAMMA = 0.5  # DRS target acceptance rate per candidate
DRS_EPSILON = 1e-6


@dataclasses.dataclass(frozen=True)
class Gate:
    """A calibrated gate: logit -> score, and the DRS or threshold acceptance rule.

    Args:
        slope, intercept: log-odds = slope * D's logit + intercept; score = sigmoid(log-odds).
        max_log_odds: the largest log-odds among calibration fakes (DRS's D_M).
        shift: DRS's gamma shift, set from the target acceptance rate.
        min_score: if set, accept when score >= min_score instead of by DRS.
    """

    slope: float
    intercept: float
    max_log_odds: float
    shift: float
    min_score: float = None

    @classmethod
    def from_calibration(cls, calibration, gamma=None, min_score=None):
        """The gate of a saved calibration, for a DRS target rate `gamma` or a `min_score`."""
        gamma = calibration["gamma"] if gamma is None else gamma
        shift = drs_shift(np.asarray(calibration["fake_log_odds"]),
                          calibration["max_log_odds"], gamma)
        return cls(calibration["slope"], calibration["intercept"],
                   calibration["max_log_odds"], shift, min_score)

    @classmethod
    def ungated(cls):
        """No gate: the score is sigmoid(D's raw logit) and every candidate passes, so the
        first one is kept (for runs drawn with `--no-gate`)."""
        return cls(slope=1.0, intercept=0.0, max_log_odds=0.0, shift=0.0, min_score=0.0)

    def log_odds(self, logits):
        """D's logits -> calibrated log-odds of a real match."""
        return self.slope * logits + self.intercept

    def passes(self, log_odds, uniform):
        """bool: does a candidate with these log-odds pass, given its uniform draw?"""
        if self.min_score is not None:
            return tf.sigmoid(log_odds) >= self.min_score
        return uniform < tf.sigmoid(drs_log_ratio(log_odds, self.max_log_odds) - self.shift)


def drs_log_ratio(log_odds, max_log_odds):
    """DRS's F(x) = d - log(1 - exp(d - eps)), d = min(log-odds - D_M, 0) (works on np and tf)."""
    d = tf.minimum(tf.convert_to_tensor(log_odds, tf.float32) - max_log_odds, 0.0)
    return d - tf.math.log1p(-tf.exp(d - DRS_EPSILON))


def drs_shift(fake_log_odds, max_log_odds, gamma):
    """The shift whose mean acceptance probability over calibration fakes is `gamma`."""
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma (the DRS target acceptance rate) must be in (0, 1], got {gamma}")
    ratio = drs_log_ratio(fake_log_odds, max_log_odds).numpy()

    def rate(shift):
        return float(np.mean(1.0 / (1.0 + np.exp(np.clip(shift - ratio, -60, 60)))))

    low, high = -100.0, 100.0  # rate(low) ~ 1, rate(high) ~ 0; rate falls as shift grows
    for _ in range(100):
        middle = (low + high) / 2.0
        low, high = (middle, high) if rate(middle) > gamma else (low, middle)
    return (low + high) / 2.0


def fit_logistic(real_logits, fake_logits, l2=1e-3, steps=100):
    """(slope, intercept) of P(real) = sigmoid(slope * logit + intercept), classes weighted equally.

    Newton's method on the weighted cross-entropy with a small L2 on the slope
    (which keeps it finite when the classes separate perfectly).
    """
    x = np.concatenate([real_logits, fake_logits]).astype(np.float64)
    y = np.concatenate([np.ones(len(real_logits)), np.zeros(len(fake_logits))])
    w = np.where(y == 1, 0.5 / len(real_logits), 0.5 / len(fake_logits))
    features = np.stack([x, np.ones_like(x)], axis=1)
    theta = np.zeros(2)
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(features @ theta, -60, 60)))
        gradient = features.T @ (w * (p - y)) + l2 * np.array([theta[0], 0.0])
        hessian = (features * (w * p * (1 - p))[:, None]).T @ features + l2 * np.diag([1.0, 0.0])
        theta -= np.linalg.solve(hessian + 1e-9 * np.eye(2), gradient)
    return float(theta[0]), float(theta[1])


def auc(positive, negative):
    """Area under the ROC curve: P(a positive scores above a negative), ties count half."""
    positive, negative = np.asarray(positive)[:, None], np.asarray(negative)[None, :]
    return float(np.mean((positive > negative) + 0.5 * (positive == negative)))


def describe(calibration):
    """One line about a calibration, for logs."""
    line = (f"calibrated on {calibration['pairs']} {calibration['split']} pairs: "
            f"real-vs-fake AUC {calibration['auc_real_vs_fake']:.2f}, mean score real "
            f"{calibration['real_score_mean']:.2f} / fake {calibration['fake_score_mean']:.2f}")
    if "held_out" in calibration:
        line += f"; held-out AUC {calibration['held_out']['auc_real_vs_fake']:.2f}"
    return line
