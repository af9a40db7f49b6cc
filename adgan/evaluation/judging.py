"""The independent judge's reading of runs: evaluate.py's judge section (judge.py is the judge).

Per concept set (seen in training, held out), drawing style and prompt language: the
top-1 rate among 100 concepts of one gated draw per prompt that asks for the concept in
that style, its ratio to the real drawings of that style, and the real drawings the
judge never saw; and the by-eye panel as the judge reads it.
"""

import os

import numpy as np
import tensorflow as tf

from adgan.data import bundles
from adgan.data.styles import style_prompt
from adgan.drawing.sampling import draw_prompts
from adgan.evaluation.judge import load_judge, top1_among
from adgan.evaluation.metrics import two_object_rate
from adgan.runs.run import Run
import data_loader

JUDGE_GROUPS = ("Food & Drink", "Objects")  # the product groups the model issue's bars read
LANGUAGES = {"en": "name_en", "zh": "name_zh"}  # a prompt's language: the concept name it uses


def judge_rate(judge_logits, true, pool, repeats, seed):
    """{"top1", "top1_std", "images"}: `judge.top1_among` of logits [N, K] of images of
    concepts `true` [N], distractors from `pool`."""
    mean, std = top1_among(judge_logits, true, pool, repeats=repeats, seed=seed)
    return {"top1": mean, "top1_std": std, "images": int(len(true))}


def judge_pool(judge, groups):
    """(pool of class indices, {"seen": ..., "held out": ...}): the judge's concepts in
    `groups` (all its concepts when it has none of them), split by the manifest's split
    of each (train: seen in training, test: held out); empty sets left out."""
    concepts = judge.concepts
    chosen = concepts["group"].isin(groups).to_numpy()
    if not chosen.any():
        chosen[:] = True
    pool = np.flatnonzero(chosen)
    split = concepts["split"].to_numpy()[pool]
    sets = {"seen": pool[split != "test"], "held out": pool[split == "test"]}
    return pool, {name: members for name, members in sets.items() if len(members)}


def styled_prompts(judge, members, style_words, column):
    """(prompts, their concepts, their styles): each concept's name in `column` asked in
    each style the judge knows and the run has a word for (as typed: "noto style" words
    come from the run's styles.csv); a run without style words is asked the name alone
    (style "any")."""
    styles = [s for s in sorted(set(judge.images["style"])) if s in style_words] or ["any"]
    prompts, concepts, asked = [], [], []
    for style in styles:
        for k in members:
            name = judge.concepts[column].iloc[k]
            if name:
                prompts.append(name if style == "any" else style_prompt(name, style, style_words))
                concepts.append(k)
                asked.append(style)
    return prompts, np.array(concepts, int), np.array(asked)


REAL_ROWS = {"real": False, "real, unseen by the judge": True}  # row label: held out?


def draw(run, prompts, per_prompt, sampling, compose=False):
    """`draw_prompts` of an opened `Run`: gated with `sampling["max_tries"]` unless it was
    opened ungated, styles varied as generate.py's are, bundles composed with `compose`."""
    return draw_prompts(run.sampler(compose=compose), prompts, per_prompt, sampling["seed"],
                        sampling["max_tries"] if run.gated else 1)


def judge_section(judge, runs, sampling, groups=JUDGE_GROUPS, repeats=5, only=None):
    """The independent judge's report: per concept set (seen, held out), drawing style and
    prompt language, top-1 among `candidates` concepts of one gated draw per prompt
    (sample 0, as served), its ratio to the real drawings of that style (the ceiling),
    and the real drawings of that style the judge never saw (`REAL_ROWS`).

    runs: the opened `Run`s; sampling: {"seed", "max_tries"}; only: the concept sets to read
    (default both)."""
    pool, sets = judge_pool(judge, groups)
    sets = {name: members for name, members in sets.items() if only is None or name in only}
    seed, gated = sampling["seed"], all(run.gated for run in runs)
    real_images = judge.images[judge.images["concept"].isin(pool)]
    real_logits = judge.logits(np.stack([data_loader.load_image(p, judge.image_size)
                                         for p in real_images["path"]]))
    section = {"groups": sorted(set(judge.concepts["group"].iloc[pool])),
               "candidates": int(min(100, len(pool))), "repeats": repeats,
               "gated": gated, "max_tries": sampling["max_tries"] if gated else 1,
               "sample": seed, "sets": {}}
    for set_name, members in sets.items():
        styles = {}
        for style in sorted(set(real_images["style"])):
            styles[style] = {}
            for label, held_out in REAL_ROWS.items():
                real = ((real_images["style"] == style) & real_images["concept"].isin(members)
                        & (real_images["held_out"] == held_out)).to_numpy()
                styles[style][label] = judge_rate(real_logits[real],
                                                  real_images["concept"][real], pool, repeats,
                                                  seed)
        for run in runs:
            for language, column in LANGUAGES.items():
                prompts, concepts, asked = styled_prompts(judge, members, run.style_words, column)
                drawn = draw(run, prompts, 1, sampling)
                logits = judge.logits(drawn["images"][:, 0])
                for style in sorted(set(asked)):
                    mine = asked == style
                    row = judge_rate(logits[mine], concepts[mine], pool, repeats, seed)
                    real = styles.get(style, {}).get("real", {}).get("top1")
                    row["ratio"] = row["top1"] / real if real else None
                    styles.setdefault(style, {})[f"{run.name} {language}"] = row
        section["sets"][set_name] = {"concepts": int(len(members)), "styles": styles}
    return section


def real_drawings(judge):
    """The real drawings a model may draw from: of the concepts seen in training, and of the
    held-out ones, which a release's catalogue (`export.py --catalogue all`) holds though the
    generator never trained on them: (uint8 images [N, S, S, 3] at the judge's side, their
    judge features [N, C], concepts [N], paths [N])."""
    rows = judge.images
    images = np.stack([data_loader.load_image(p, judge.image_size) for p in rows["path"]])
    return images, judge.features(images), rows["concept"].to_numpy(), rows["path"].tolist()


def distances(queries, bank, unit=False):
    """[Q, N] distances between rows: cosine distance of features (`unit`), else the RMS
    pixel difference of uint8 images on a 0-1 scale."""
    a = queries.reshape(len(queries), -1).astype(np.float64)
    b = bank.reshape(len(bank), -1).astype(np.float64)
    if unit:
        a, b = (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12) for x in (a, b))
        return 1.0 - a @ b.T
    a, b = a / 255.0, b / 255.0
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(squared, 0.0) / a.shape[1])


def copy_check(judge, drawings, images, concept):
    """Generated, or copied? Of `images` (uint8 [K, H, W, 3], draws of one `concept`): the
    median distance of each to its nearest real drawing (`real_drawings`), in the
    judge's features and in pixels, beside the median distance from a real drawing of the
    concept to its nearest drawing of the concept in another style (a restyle); the share
    of draws nearer in pixels than that; and each draw's nearest drawing (its index)."""
    bank, bank_features, concepts, _ = drawings
    small = np.stack([np.asarray(tf.image.resize(i, (judge.image_size,) * 2, "area"))
                      for i in images]).round().astype(np.uint8)
    features = judge.features(small)
    pixel, feature = distances(small, bank), distances(features, bank_features, unit=True)
    mine = np.flatnonzero(concepts == concept)
    restyle = restyle_feature = None  # a concept with one drawing or none has no restyle
    if len(mine) > 1:  # each real drawing of the concept against its other styles'
        pairs = [distances(bank[mine], bank[mine]),
                 distances(bank_features[mine], bank_features[mine], unit=True)]
        for pair in pairs:
            np.fill_diagonal(pair, np.inf)
        restyle, restyle_feature = (float(np.median(pair.min(1))) for pair in pairs)
    nearest = pixel.min(1)
    return {"pixel_distance": float(np.median(nearest)),
            "feature_distance": float(np.median(feature.min(1))),
            "restyle_pixel_distance": restyle, "restyle_feature_distance": restyle_feature,
            "nearer_than_a_restyle": float(np.mean(nearest < restyle)) if restyle else None,
            "nearest": pixel.argmin(1).tolist()}


def judge_panel(judge, runs, sampling, prompts, per_prompt=8, groups=JUDGE_GROUPS, repeats=5):
    """The by-eye panel as the judge reads it: per run and prompt, the top-1 rate among
    `candidates` concepts of `per_prompt` gated draws (seeds seed.., each in the style its
    seed picks, as generate.py draws), the judge's first guess for each draw, and the copy
    check (`copy_check`). Returns (section, {run label: uint8 images [P, K, S, S, 3]}, and
    "<label> nearest": the nearest real drawing of each draw) for the pictures."""
    pool, _ = judge_pool(judge, groups)
    drawings = real_drawings(judge)
    known = [p for p in prompts if judge.knows(p)]
    section = {"prompts": list(prompts), "unknown_to_the_judge": [p for p in prompts
                                                                   if p not in known],
               "samples_per_prompt": per_prompt, "runs": {}}
    pictures = {}
    for run in runs:
        label = run.name
        drawn = draw(run, known, per_prompt, sampling)
        images = drawn["images"]
        logits = judge.logits(images.reshape(-1, *images.shape[2:]))
        true = np.repeat([judge.concept_of(p) for p in known], per_prompt)
        rows, nearest = {}, []
        for i, prompt in enumerate(known):
            mine = slice(i * per_prompt, (i + 1) * per_prompt)
            candidates = np.union1d(pool, true[mine])
            guesses = candidates[logits[mine][:, candidates].argmax(1)]
            check = copy_check(judge, drawings, images[i], true[mine][0])
            rows[prompt] = {**judge_rate(logits[mine], true[mine], candidates, repeats,
                                         sampling["seed"]),
                            "first_guesses": [judge.concepts["name_en"].iloc[g]
                                              for g in guesses],
                            "copy_check": {**check, "nearest": [
                                os.path.relpath(drawings[3][k]) for k in check["nearest"]]}}
            nearest.append(drawings[0][check["nearest"]])
        section["runs"][label] = rows
        pictures[label] = images
        pictures[f"{label} nearest"] = np.stack(nearest)
    return section, pictures


def mean_pairwise(features):
    """Mean cosine distance over the pairs of rows of features [K, C] (K >= 2)."""
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    return float(1.0 - (unit @ unit.T)[np.triu_indices(len(unit), 1)].mean())


def judge_diversity(judge, runs, sampling, count=50, per_prompt=4, styles=("noto", "twemoji"),
                    groups=JUDGE_GROUPS):
    """Do draws of one prompt in one style differ? For `count` seen concepts (the first by
    class) and each of `styles`: the mean pairwise distance of the judge's features of
    `per_prompt` gated draws of the prompt naming the style (English), averaged over the
    concepts, beside the real drawings' across styles (the mean pairwise distance among
    a concept's drawings in every style); and the ratio."""
    _, sets = judge_pool(judge, groups)
    members = sets["seen"][:count]
    real = []
    for k in members:
        paths = judge.images["path"][judge.images["concept"] == k]
        if len(paths) > 1:
            real.append(mean_pairwise(judge.features(np.stack(
                [data_loader.load_image(p, judge.image_size) for p in paths]))))
    section = {"concepts": int(len(members)), "per_prompt": per_prompt,
               "real across styles": float(np.mean(real)), "runs": {}}
    for run in runs:
        words, rows = run.style_words, {}
        for style in (s for s in styles if s in words):
            prompts = [style_prompt(judge.concepts["name_en"].iloc[k], style, words)
                       for k in members]
            drawn = draw(run, prompts, per_prompt, sampling)["images"]
            within = np.mean([mean_pairwise(judge.features(images)) for images in drawn])
            rows[style] = {"within_style": float(within),
                           "ratio": float(within / section["real across styles"])}
        section["runs"][run.name] = rows
    return section


def judge_bundles(judge, runs, sampling, count=100, groups=JUDGE_GROUPS):
    """The two-object rate as the judge reads it (`metrics.two_object_rate` with the judge's
    logits of each half, `bundles.halves`, among 100 of the seen concepts): `count` pairs of
    seen concepts, each in one style, asked in Chinese and in English ("热饮和水果蛋糕"), one
    gated draw a prompt composed product by product as served; real side-by-side
    composites of the pair's drawings are the ceiling."""
    pool, sets = judge_pool(judge, groups)
    rows = judge.images[judge.images["concept"].isin(sets["seen"])].reset_index(drop=True)
    concept = rows["concept"].to_numpy()
    names_en, names_zh = (judge.concepts[c].to_numpy()[concept] for c in LANGUAGES.values())
    pairs = bundles.evaluation_pairs(names_en, rows["style"], count, False, sampling["seed"])
    prompts, owner = bundles.evaluation_prompts(pairs, names_en, names_zh, sampling["seed"])
    classes = np.searchsorted(pool, concept[pairs])  # [P, 2], indices into the pool

    def rate(images, pair_classes):  # uint8 [N, S, S, 3]
        cut = bundles.halves(images)
        logits = judge.logits(cut.reshape(-1, *cut.shape[2:]))[:, pool]
        return {"two_object_rate": two_object_rate(logits.reshape(len(images), 2, -1),
                                                   pair_classes, np.eye(len(pool)),
                                                   seed=sampling["seed"]),
                "images": int(len(images))}

    rng = np.random.default_rng(sampling["seed"])
    rgba = {r: data_loader.load_image_rgba(rows["path"][r], 64) for r in np.unique(pairs)}
    real = np.stack([bundles.composite_products([rgba[a], rgba[b]], "side_by_side", 64, rng)
                     for a, b in pairs])
    section = {"pairs": int(len(pairs)), "prompts": len(prompts), "examples": prompts[:4],
               "rows": {"real composites (ceiling)": rate(real, classes)}}
    for run in runs:
        drawn = draw(run, prompts, 1, sampling, compose=True)
        section["rows"][f"{run.name} composed"] = rate(drawn["images"][:, 0],
                                                                     classes[owner])
    return section


def judge_report(judge_dir, runs, sampling, groups=JUDGE_GROUPS, repeats=5, panel_prompts=(),
                 panel_samples=8, bundle_pairs=0, diversity_concepts=0):
    """The judge's section of a report (`judge_section`, `judge_panel` of `panel_prompts`
    unless empty, `judge_bundles` of `bundle_pairs` and `judge_diversity` of
    `diversity_concepts` unless 0) and the panel's pictures
    ({run label: images} or None)."""
    judge = load_judge(judge_dir)
    section = {"judge": os.path.abspath(judge_dir),
               **judge_section(judge, runs, sampling, groups, repeats)}
    if bundle_pairs:
        section["bundles"] = judge_bundles(judge, runs, sampling, bundle_pairs, groups)
    if diversity_concepts:
        section["diversity"] = judge_diversity(judge, runs, sampling, diversity_concepts,
                                               groups=groups)
    pictures = None
    if panel_prompts:
        section["panel"], pictures = judge_panel(judge, runs, sampling, panel_prompts,
                                                 panel_samples, groups, repeats)
    return section, pictures


def judge_runs(run_dirs, max_tries=8, seed=0, gated=True, judge=None, also=None):
    """`evaluate_runs` with the judge alone (`--judge-only`: no dual encoder needed), plus
    what `also(runs, sampling)` measures without one ((report part, its pictures))."""
    runs = [Run(run_dir, gated=gated) for run_dir in run_dirs]
    sampling = dict(max_tries=max_tries, seed=seed)
    section, panel = judge_report(runs=runs, sampling=sampling, **judge)
    report = {"runs": [os.path.abspath(r) for r in run_dirs], "judge": section}
    pictures = {"judge_panel": panel}
    if also is not None:
        part, part_pictures = also(runs, sampling)
        report.update(part)
        pictures.update(part_pictures)
    return report, pictures
