"""Text-to-image quality metrics on feature vectors and images (evaluate.py uses them).

- Fréchet distance and KID (unbiased MMD^2, cubic kernel) between two feature sets;
- R-precision: top-1 rate of an image's prompt among other concepts' prompts;
- diversity: mean pairwise distance of unit features within a prompt;
- colour accuracy: the dominant colour of a product against its prompt's colour;
- Inception features for true FID, from a user's local weights file (optional).
"""

import os

import keras
import numpy as np
import tensorflow as tf

from adgan.data import colors
from adgan.helpers import to_float


def frechet_distance(a, b):
    """Fréchet distance between Gaussians fitted to feature sets a [N, D] and b [M, D].

    Tr(sqrt(Ca Cb)) is computed as the trace of sqrt(Ca^1/2 Cb Ca^1/2), a symmetric
    PSD matrix, so numpy's eigh suffices (no scipy).
    """
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = np.sqrt(np.clip(middle, 0, None)).sum()
    return float(((mean_a - mean_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b)
                 - 2 * trace_root)


def kernel_inception_distance(a, b, subset_size=100, subsets=20, seed=0):
    """KID: unbiased MMD^2 with the cubic kernel (x.y / D + 1)^3, mean and std over subsets."""
    rng = np.random.default_rng(seed)
    size = min(subset_size, len(a), len(b))
    dim = a.shape[1]
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), size, replace=False)]
        y = b[rng.choice(len(b), size, replace=False)]
        kxx, kyy, kxy = ((x @ x.T / dim + 1) ** 3, (y @ y.T / dim + 1) ** 3,
                         (x @ y.T / dim + 1) ** 3)
        off = size * (size - 1)
        values.append((kxx.sum() - np.trace(kxx)) / off + (kyy.sum() - np.trace(kyy)) / off
                      - 2 * kxy.mean())
    return float(np.mean(values)), float(np.std(values))


def r_precision(image_codes, true_prompt, prompt_vectors, prompt_concept, candidates=100,
                repeats=5, seed=0):
    """Top-1 rate of each image's prompt among `candidates` prompts (the rest of other concepts).

    image_codes [N, T] and prompt_vectors [P, T] are unit vectors; true_prompt [N]
    indexes prompt_vectors; prompt_concept [P] names each prompt's concept, so a
    prompt's translation is never drawn as a negative. Returns (mean, std) over repeats.
    """
    rng = np.random.default_rng(seed)
    prompt_concept = np.asarray(prompt_concept)
    rates = []
    for _ in range(repeats):
        hits = []
        for code, prompt in zip(image_codes, true_prompt):
            others = np.flatnonzero(prompt_concept != prompt_concept[prompt])
            negatives = rng.choice(others, min(candidates - 1, len(others)), replace=False)
            scores = prompt_vectors[np.concatenate([[prompt], negatives])] @ code
            hits.append(scores[0] > scores[1:].max())
        rates.append(np.mean(hits))
    return float(np.mean(rates)), float(np.std(rates))


def diversity(features, groups):
    """Mean pairwise Euclidean distance of unit features within each group, averaged."""
    unit = features / (np.linalg.norm(features, axis=1, keepdims=True) + 1e-12)
    means = []
    for group in np.unique(groups):
        members = unit[np.asarray(groups) == group]
        if len(members) > 1:
            distances = np.linalg.norm(members[:, None] - members[None], axis=-1)
            means.append(distances[np.triu_indices(len(members), 1)].mean())
    return float(np.mean(means)) if means else None


def distance_features(features):
    """Pooled features scaled to norm sqrt(D): every coordinate O(1), as KID's kernel expects.

    The raw pooled activations have no fixed scale (they grow with training), which
    would make FID and KID incomparable between encoders.
    """
    norms = np.linalg.norm(features, axis=1, keepdims=True) + 1e-12
    return features / norms * np.sqrt(features.shape[1])


def color_scores(images, targets):
    """Colour accuracy of uint8 images [N, S, S, 3] against palette indices [N]: overall
    and per colour (the dominant colour of the product's pixels must be the prompt's)."""
    targets = np.asarray(targets)
    hits = colors.dominant_color(images) == targets
    return {"accuracy": float(hits.mean()), "images": len(hits),
            "per_color": {name: float(hits[targets == k].mean()) if (targets == k).any() else None
                          for k, name in enumerate(colors.COLOR_NAMES)}}


def two_object_rate(half_codes, pairs, concept_vectors, candidates=100, seed=0):
    """Share of "A and B" pictures that show both products (issue 15's two-object measure).

    half_codes [N, 2, T]: unit image codes of each picture's two halves (`bundles.halves`);
    pairs [N, 2]: each picture's concepts (A, B), indices into concept_vectors [C, T] (unit
    text vectors). Among A, B and `candidates` - 2 other concepts (drawn per picture), a
    picture passes when one half ranks A first and the other B first, either way round;
    a picture of A alone fails, since both its halves rank A first.
    """
    rng = np.random.default_rng(seed)
    hits = []
    for codes, (first, second) in zip(half_codes, pairs):
        others = np.setdiff1d(np.arange(len(concept_vectors)), [first, second])
        negatives = rng.choice(others, min(candidates - 2, len(others)), replace=False)
        choices = np.concatenate([[first, second], negatives])
        best = choices[np.argmax(codes @ concept_vectors[choices].T, axis=1)]  # per half
        hits.append(sorted(best.tolist()) == sorted([first, second]))
    return float(np.mean(hits))


class InceptionFeatures:
    """2048-d pool features of a user's InceptionV3 weights file (for true FID; optional).

    Nothing is downloaded: `weights` must be a local file that
    `keras.applications.InceptionV3(include_top=False, pooling="avg")` can load.
    """

    def __init__(self, weights):
        if not os.path.exists(weights):
            raise FileNotFoundError(f"--inception-weights {weights} not found (FID with "
                                    "Inception needs the weights file on disk; leave the flag "
                                    "out to skip it)")
        self.model = keras.applications.InceptionV3(include_top=False, pooling="avg",
                                                    weights=weights, input_shape=(299, 299, 3))

    def __call__(self, images, batch_size=32):
        """uint8 images [N, S, S, 3] -> features [N, 2048] (bilinear resize to 299, [-1, 1])."""
        out = []
        for start in range(0, len(images), batch_size):
            batch = tf.image.resize(to_float(images[start:start + batch_size]), (299, 299))
            out.append(self.model(batch, training=False).numpy())
        return np.concatenate(out)
