"""The independent judge's reading of runs: evaluate.py's judge section (judge.py is the judge).

Per concept set (seen in training, held out), drawing style and prompt language: the
top-1 rate among 100 concepts of one gated draw per prompt that asks for the concept in
that style, its ratio to the real drawings of that style, and the real drawings the
judge never saw; and the by-eye panel as the judge reads it.
"""

import os

import numpy as np

import data_loader
import runs
from judge import load_judge, top1_among
from sampling import draw_prompts
from styles import style_prompt

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


def judge_section(judge, gans, sampling, groups=JUDGE_GROUPS, repeats=5):
    """The independent judge's report: per concept set (seen, held out), drawing style and
    prompt language, top-1 among `candidates` concepts of one gated draw per prompt
    (sample 0, as served), its ratio to the real drawings of that style (the ceiling),
    and the real drawings of that style the judge never saw (`REAL_ROWS`).

    sampling: `generated_rows`' keyword arguments (seed, max_tries, gated, samplers)."""
    pool, sets = judge_pool(judge, groups)
    seed, gated = sampling["seed"], sampling["gated"]
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
        for run_dir, gan in gans.items():
            label = runs.run_name(run_dir)
            sampler = runs.run_sampler(gan, run_dir, sampling["samplers"], gated)
            for language, column in LANGUAGES.items():
                prompts, concepts, asked = styled_prompts(
                    judge, members, runs.load_style_words(run_dir), column)
                drawn = draw_prompts(sampler, prompts, 1, seed, section["max_tries"])
                logits = judge.logits(drawn["images"][:, 0])
                for style in sorted(set(asked)):
                    mine = asked == style
                    row = judge_rate(logits[mine], concepts[mine], pool, repeats, seed)
                    real = styles.get(style, {}).get("real", {}).get("top1")
                    row["ratio"] = row["top1"] / real if real else None
                    styles.setdefault(style, {})[f"{label} {language}"] = row
        section["sets"][set_name] = {"concepts": int(len(members)), "styles": styles}
    return section


def judge_panel(judge, gans, sampling, prompts, per_prompt=8, groups=JUDGE_GROUPS, repeats=5):
    """The by-eye panel as the judge reads it: per run and prompt, the top-1 rate among
    `candidates` concepts of `per_prompt` gated draws (seeds seed.., each in the style its
    seed picks, as generate.py draws), and the judge's first guess for each draw. Returns
    (section, {run label: uint8 images [P, K, S, S, 3]}) for the picture."""
    pool, _ = judge_pool(judge, groups)
    known = [p for p in prompts if judge.knows(p)]
    section = {"prompts": list(prompts), "unknown_to_the_judge": [p for p in prompts
                                                                   if p not in known],
               "samples_per_prompt": per_prompt, "runs": {}}
    pictures = {}
    for run_dir, gan in gans.items():
        label = runs.run_name(run_dir)
        sampler = runs.run_sampler(gan, run_dir, sampling["samplers"], sampling["gated"])
        drawn = draw_prompts(sampler, known, per_prompt, sampling["seed"],
                             sampling["max_tries"] if sampling["gated"] else 1)
        images = drawn["images"]
        logits = judge.logits(images.reshape(-1, *images.shape[2:]))
        true = np.repeat([judge.concept_of(p) for p in known], per_prompt)
        rows = {}
        for i, prompt in enumerate(known):
            mine = slice(i * per_prompt, (i + 1) * per_prompt)
            candidates = np.union1d(pool, true[mine])
            guesses = candidates[logits[mine][:, candidates].argmax(1)]
            rows[prompt] = {**judge_rate(logits[mine], true[mine], candidates, repeats,
                                         sampling["seed"]),
                            "first_guesses": [judge.concepts["name_en"].iloc[g]
                                              for g in guesses]}
        section["runs"][label] = rows
        pictures[label] = images
    return section, pictures


def judge_report(judge_dir, gans, sampling, groups=JUDGE_GROUPS, repeats=5, panel_prompts=(),
                 panel_samples=8):
    """The judge's section of a report (`judge_section`, and `judge_panel` of
    `panel_prompts` unless empty) and the panel's pictures ({run label: images} or None)."""
    judge = load_judge(judge_dir)
    section = {"judge": os.path.abspath(judge_dir),
               **judge_section(judge, gans, sampling, groups, repeats)}
    pictures = None
    if panel_prompts:
        section["panel"], pictures = judge_panel(judge, gans, sampling, panel_prompts,
                                                 panel_samples, groups, repeats)
    return section, pictures


def judge_runs(run_dirs, max_tries=8, seed=0, gated=True, judge=None):
    """`evaluate_runs` with the judge alone (`--judge-only`: no dual encoder needed)."""
    gans = {run_dir: runs.load_model(run_dir) for run_dir in run_dirs}
    sampling = dict(max_tries=max_tries, seed=seed, gated=gated, samplers={})
    section, panel = judge_report(gans=gans, sampling=sampling, **judge)
    return {"runs": [os.path.abspath(r) for r in run_dirs], "judge": section}, {"judge_panel": panel}
