"""The shop-language benchmark (`python evaluate.py shop`): prompts as shops and shoppers write
them, read by the independent judge.

Five classes, each prompt labelled with the product it names: Chinese product titles, English
ad copy, search queries with modifiers (both languages), colour + product (colours the
drawings lack included) and synonyms (both languages). They are built by a fixed recipe
(`benchmark_prompts`, seeded) from `data/shop/benchmark/` (its README names the sources):
title and ad-copy templates after real Taobao titles and retail ad lines, marketing,
season, audience and query phrases, colour words, products named by their catalogue names
or CLDR keywords, and synonyms that the prompt reader's own tables (data/shop/) do not
hold, so the figures measure generalisation, not lookup (a test keeps them apart).

For each class: the judge's top-1 among 100 of the labelled product, one gated draw a
prompt as served (sample 0), beside the same products asked by their plain English names,
and the ratio; a refused prompt counts as a miss. The same with the prompt reader off (the
prompt drawn as written: before) beside it. Colour + product also gets colour obedience
(`obeys_color`) and its ceiling: the judge's reading of real drawings recoloured to the
asked colour, over the real drawings' (a judge trained on real drawings reads recoloured
ones less well, though a person sees them at once).
"""

import argparse
import csv
import os

import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw

from adgan import fonts
from adgan.data import colors
from adgan.drawing.sampling import draw_prompts
from adgan.evaluation.judge import DEFAULT_JUDGE, load_judge
from adgan.evaluation.judging import JUDGE_GROUPS, judge_pool, judge_rate, judge_section
from adgan.helpers import CHECKOUT, make_grid, write_json, write_text
from adgan.runs.run import Run
import data_loader

BENCHMARK_DIR = os.path.join(CHECKOUT, "data", "shop", "benchmark")
CLASSES = {"title": 70, "ad copy": 70, "query": 70, "colour": 60, "synonym": 60}
# the by-eye panel: (class, language, rows), 24 rows, half of them Chinese
PANEL = (("title", "zh", 4), ("ad copy", "en", 4), ("query", "zh", 4), ("query", "en", 4),
         ("colour", "zh", 2), ("colour", "en", 2), ("synonym", "zh", 2), ("synonym", "en", 2))
UNUSUAL_COLORS = ("white", "grey", "brown", "gold", "navy", "beige", "purple", "pink")


def read_table(name, folder=None):
    """The rows (dicts) of `folder` (default `BENCHMARK_DIR`)/`name`.csv."""
    with open(os.path.join(folder or BENCHMARK_DIR, f"{name}.csv"), encoding="utf-8",
              newline="") as f:
        return list(csv.DictReader(f))


def benchmark_prompts(seed=0, counts=None, folder=None):
    """The benchmark's prompts: [{"class", "language", "prompt", "product" (its catalogue
    English name), "color" (the asked `colors.SHOP_COLORS` English name, or "")}].

    Per class, `counts[class]` prompts (`CLASSES` by default) from its templates in turn;
    the products (the synonyms, for the synonym class) taken in a shuffled order, each slot
    filled with a random phrase of its kind and language; a title names a colour half the
    time. The same seed gives the same prompts."""
    rng = np.random.default_rng(seed)
    templates, products = read_table("templates", folder), read_table("products", folder)
    synonyms, colour_words = read_table("synonyms", folder), read_table("colors", folder)
    phrases = {}
    for row in read_table("phrases", folder):
        phrases.setdefault((row["kind"], row["language"]), []).append(row["phrase"])
    prompts = []
    for name, count in (counts or CLASSES).items():
        mine = [t for t in templates if t["class"] == name]
        subjects = {}  # language -> shuffled (name, product) pairs, taken in turn
        for k in range(count):
            template = mine[k % len(mine)]
            language = template["language"]
            if language not in subjects:
                pairs = ([(s["term"], s["product"]) for s in synonyms
                          if s["language"] == language] if name == "synonym"
                         else [(p[language], p["product"]) for p in products
                               # "blue red apple" asks two colours
                               if name != "colour" or not colors.mentions_color(p[language])])
                subjects[language] = [pairs[i] for i in rng.permutation(len(pairs))]
            subject, product = subjects[language][k // len(mine) % len(subjects[language])]
            colour = {"word": "", "color": ""}
            words = [c for c in colour_words if c["language"] == language]
            if name == "colour" or (name == "title" and rng.random() < 0.5):
                colour = words[rng.integers(len(words))]
            slots = {kind: rng.choice(found) for (kind, lang), found in phrases.items()
                     if lang == language}
            text = template["template"].format(
                **slots, product=subject, term=subject, colour=colour["word"])
            prompts.append({"class": name, "language": language,
                            "prompt": " ".join(text.split()), "product": product,
                            "color": colour["color"] if name == "colour" else ""})
    return prompts


def foreground_hsv(image):
    """Median hue (degrees), saturation and value of a drawing's product (what is not near
    white), or None when under 3% of it is product."""
    rgb = np.asarray(image, np.float32) / 255.0
    product = rgb.min(-1) < 0.85
    if product.mean() < 0.03:
        return None
    hsv = tf.image.rgb_to_hsv(rgb[product]).numpy()
    angle = hsv[:, 0] * 2 * np.pi
    hue = np.degrees(np.arctan2(np.median(np.sin(angle)), np.median(np.cos(angle)))) % 360
    return hue, float(np.median(hsv[:, 1])), float(np.median(hsv[:, 2]))


def obeys_color(image, color_name):
    """Does a drawing's product have the colour `color_name` (a `colors.SHOP_COLORS` English
    name)? Chromatic: its median hue within 35° of the colour's and saturated (> 0.2);
    achromatic (black, white, grey, silver): unsaturated (< 0.25) with a median value in the
    colour's range (± 0.15)."""
    _, _, hue, _, low, high = next(c for c in colors.SHOP_COLORS if c[0][0] == color_name)
    found = foreground_hsv(image)
    if found is None:
        return False
    drawn_hue, saturation, value = found
    if hue is None:
        return saturation < 0.25 and low - 0.15 <= value <= high + 0.15
    gap = abs(drawn_hue - hue) % 360
    return min(gap, 360 - gap) <= 35 and saturation > 0.2


def color_number(color_name):
    """The `colors.SHOP_COLORS` index of an English colour name."""
    return next(k for k, c in enumerate(colors.SHOP_COLORS) if c[0][0] == color_name)


def refusals(run, prompts):
    """bool [N]: does `run` refuse each prompt (`Run.prompt_problems`)?"""
    return np.array([problem is not None for _, problem in run.prompt_problems(prompts)],
                    bool).reshape(-1)


def draw_rows(run, prompts, seed, max_tries, size=None):
    """(uint8 images [N, S, S, 3] (white where refused), refused [N], {"drawn_as",
    "ignored"} [N] or None): one gated draw a prompt, sample `seed`, as served."""
    refused = refusals(run, prompts)
    kept = [p for p, r in zip(prompts, refused) if not r]
    side = size or run.model.image_size
    images = np.full((len(prompts), side, side, 3), 255, np.uint8)
    read = None
    if kept:
        drawn = draw_prompts(run.sampler(), kept, 1, seed, max_tries if run.gated else 1, size)
        images[~refused] = drawn["images"][:, 0]
        if "drawn_as" in drawn:
            read = {k: np.full(len(prompts), "", object) for k in ("drawn_as", "ignored")}
            for key in read:
                read[key][~refused] = drawn[key][:, 0]
    return images, refused, read


def rate_of(judge, images, true, refused, pool, repeats, seed):
    """`judge_rate` of the drawn images, a refused prompt counted as a miss."""
    kept = ~refused
    if not kept.any():
        return {"top1": 0.0, "top1_std": 0.0, "images": 0, "refused": int(refused.sum())}
    row = judge_rate(judge.logits(images[kept]), true[kept], pool, repeats, seed)
    return {**row, "top1": row["top1"] * kept.mean(), "refused": int(refused.sum())}


def color_ceiling(judge, prompts, pool, repeats, seed):
    """The judge's reading of each colour prompt's product in real drawings (sample 0's
    style: noto) as they are and recoloured to the asked colour (`colors.recolor_drawings`),
    and the colour check on the recoloured ones: what a perfect colour + product drawing
    would score."""
    rows = judge.images[judge.images["style"] == "noto"]
    concept_of = {judge.concepts["name_en"].iloc[k]: k for k in rows["concept"]}
    chosen = [p for p in prompts if p["product"] in concept_of]
    paths = [rows["path"][rows["concept"] == concept_of[p["product"]]].iloc[0] for p in chosen]
    real = np.stack([data_loader.load_image(path, 64) for path in paths])
    recolored = colors.recolor_drawings(tf.constant(real), tf.constant(
        [color_number(p["color"]) for p in chosen])).numpy()
    true = np.array([concept_of[p["product"]] for p in chosen])
    none = np.zeros(len(chosen), bool)
    plain = rate_of(judge, real, true, none, pool, repeats, seed)
    shown = rate_of(judge, recolored, true, none, pool, repeats, seed)
    obeyed = np.mean([obeys_color(image, p["color"]) for image, p in zip(recolored, chosen)])
    return {"real": plain["top1"], "recolored": shown["top1"],
            "ratio": shown["top1"] / plain["top1"] if plain["top1"] else None,
            "color_obeyed": float(obeyed), "images": len(chosen)}


def shop_section(judge, run, before, prompts, sampling, repeats=5):
    """Per class and language: the judge's top-1 of the prompts as read (`run`), as
    written (`before`, the reader off) and of the same products by their plain English
    names, the ratios, refusals; colour obedience for the colour class. Returns (section,
    per-prompt rows)."""
    pool, _ = judge_pool(judge, JUDGE_GROUPS)
    true = np.array([judge.concept_of(p["product"]) for p in prompts])
    pool = np.union1d(pool, true)
    texts = [p["prompt"] for p in prompts]
    seed, tries = sampling["seed"], sampling["max_tries"]
    after, refused_after, read = draw_rows(run, texts, seed, tries)
    earlier, refused_before, _ = draw_rows(before, texts, seed, tries)
    plain, refused_plain, _ = draw_rows(run, [judge.concepts["name_en"].iloc[k] for k in true],
                                        seed, tries)
    groups = {}
    for k, p in enumerate(prompts):
        for key in ((p["class"], "all"), (p["class"], p["language"]), ("all", "all")):
            groups.setdefault(key, []).append(k)
    classes = {}
    for (name, language), members in sorted(groups.items()):
        mine = np.array(members)
        row = {"prompts": len(mine)}
        for label, images, refused in (("read", after, refused_after),
                                       ("as written", earlier, refused_before),
                                       ("plain name", plain, refused_plain)):
            row[label] = rate_of(judge, images[mine], true[mine], refused[mine], pool, repeats,
                                 seed)
        base = row["plain name"]["top1"]
        row["ratio"] = row["read"]["top1"] / base if base else None
        row["ratio as written"] = row["as written"]["top1"] / base if base else None
        if name == "colour":
            for label, images, refused in (("read", after, refused_after),
                                           ("as written", earlier, refused_before)):
                row[label]["color_obeyed"] = float(np.mean([
                    not refused[k] and obeys_color(images[k], prompts[k]["color"])
                    for k in mine]))
        classes.setdefault(name, {})[language] = row
    colour = [p for p in prompts if p["class"] == "colour"]
    section = {"prompts": len(prompts), "candidates": int(min(100, len(pool))),
               "sample": seed, "max_tries": tries, "classes": classes,
               "colour ceiling": color_ceiling(judge, colour, pool, repeats, seed)}
    rows = [{**p, "drawn_as": read["drawn_as"][k] if read else "",
             "ignored": read["ignored"][k] if read else "", "refused": bool(refused_after[k]),
             "refused as written": bool(refused_before[k])} for k, p in enumerate(prompts)]
    return section, rows


def panel_prompts(prompts):
    """The by-eye panel's 24 prompts (`PANEL`): of each class and language, the first in the
    benchmark's order whose products no row before has, the colour rows with colours the
    drawings lack."""
    chosen, products = [], set()
    for name, language, count in PANEL:
        mine = [p for p in prompts if p["class"] == name and p["language"] == language
                and (name != "colour" or p["color"] in UNUSUAL_COLORS)]
        for _ in range(count):
            left = [p for p in mine if p not in chosen]
            fresh = [p for p in left if p["product"] not in products]
            if left:
                chosen.append((fresh or left)[0])
                products.add(chosen[-1]["product"])
    return chosen


def panel_picture(run, prompts, per_prompt=8, seed=0, max_tries=8, size=128):
    """uint8 picture: a row of `per_prompt` gated draws for each prompt, under it the prompt
    and what was read of it ("drawn as: … — ignored: …"); and the readings."""
    drawn = draw_prompts(run.sampler(), [p["prompt"] for p in prompts], per_prompt, seed,
                         max_tries, size)
    font = fonts.load(15)
    rows = []
    for k, prompt in enumerate(prompts):
        grid = make_grid(drawn["images"][k], rows=1)
        caption = Image.new("RGB", (grid.shape[1], 44), "white")
        pen = ImageDraw.Draw(caption)
        pen.text((6, 3), f"{k + 1}. {prompt['prompt']}  [{prompt['class']}; labelled: "
                         f"{prompt['product']}]", fill=(20, 20, 20), font=font)
        line = (f"drawn as: {drawn['drawn_as'][k][0]}" + (
            f" — ignored: {drawn['ignored'][k][0]}" if drawn["ignored"][k][0] else "")
                if "drawn_as" in drawn else "drawn as written")
        pen.text((6, 23), line, fill=(90, 90, 90), font=font)
        rows += [grid, np.asarray(caption)]
    return np.concatenate(rows), [drawn.get("drawn_as", [[""]] * len(prompts))[k][0]
                                  for k in range(len(prompts))]


def held_out_section(judge, run, before, sampling, repeats=5):
    """The held-out products of the bank (in it, never trained on), as `judging.judge_section`
    reads them, with the reader (`run`) and without (`before`)."""
    return judge_section(judge, [run, before], sampling, JUDGE_GROUPS, repeats,
                         only=("held out",))


def format_shop_table(section):
    """Markdown table of a shop section's classes."""
    lines = ["| class | language | prompts | read | as written (before) | plain name | ratio | "
             "ratio before | refused (before) | colour obeyed (before) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, languages in section["classes"].items():
        for language, row in languages.items():
            colour = (f"{row['read']['color_obeyed']:.2f} ({row['as written']['color_obeyed']:.2f})"
                      if "color_obeyed" in row["read"] else "")
            lines.append(
                f"| {name} | {language} | {row['prompts']} | {row['read']['top1']:.3f} | "
                f"{row['as written']['top1']:.3f} | {row['plain name']['top1']:.3f} | "
                f"{row['ratio'] or 0:.2f} | {row['ratio as written'] or 0:.2f} | "
                f"{row['read']['refused']} ({row['as written']['refused']}) | {colour} |")
    ceiling = section["colour ceiling"]
    lines += ["", f"Colour ceiling (real noto drawings of the colour prompts' products, "
                  f"{ceiling['images']}): judge top-1 {ceiling['real']:.3f} as drawn, "
                  f"{ceiling['recolored']:.3f} recoloured to the asked colour (ratio "
                  f"{ceiling['ratio'] or 0:.2f}); the colour check passes "
                  f"{ceiling['color_obeyed']:.2f} of the recoloured ones."]
    return "\n".join(lines)


def shop_report(run_dir, judge_dir=DEFAULT_JUDGE, seed=0, max_tries=8, repeats=5, out=None,
                held_out=True, panel=True):
    """The benchmark's report (and, with `out`, its json, md, prompts csv and panel png)."""
    judge = load_judge(judge_dir)
    run, before = Run(run_dir), Run(run_dir, read=False)
    prompts = benchmark_prompts(seed)
    sampling = {"seed": seed, "max_tries": max_tries}
    section, rows = shop_section(judge, run, before, prompts, sampling, repeats)
    report = {"run": os.path.abspath(run.folder), "judge": os.path.abspath(judge_dir),
              "shop": section}
    if held_out:
        report["held out"] = held_out_section(judge, run, before, sampling, repeats)
    picture = None
    if panel:
        chosen = panel_prompts(prompts)
        picture, read = panel_picture(run, chosen, seed=seed, max_tries=max_tries)
        report["panel"] = [{**p, "drawn_as": r} for p, r in zip(chosen, read)]
    if out:
        write_shop_report(report, rows, picture, out)
    return report


def write_shop_report(report, rows, picture, out):
    """out (json), its .md, the prompts as read (.csv) and the panel (.png)."""
    stem = os.path.splitext(out)[0]
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    write_json(report, out)  # first: the numbers outlive a failing picture
    with open(stem + ".csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    text = ["# Shop-language benchmark", "", f"Run `{report['run']}`, judge `{report['judge']}`, "
            f"{report['shop']['prompts']} prompts, one gated draw each (sample "
            f"{report['shop']['sample']}), top-1 among {report['shop']['candidates']}.", "",
            format_shop_table(report["shop"]), ""]
    if picture is not None:
        Image.fromarray(picture).save(stem + "_panel.png")
        text += [f"![panel]({os.path.basename(stem)}_panel.png)", ""]
    write_text("\n".join(text) + "\n", stem + ".md")


def main(argv=None, prog="evaluate.py shop"):
    """CLI: the shop-language benchmark of a run; returns the report."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="run or release (default: the shipped model)")
    parser.add_argument("--judge", default=DEFAULT_JUDGE, help="the independent judge")
    parser.add_argument("--out", default="reports/shop.json")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-tries", type=int, default=8, help="the gate's budget")
    parser.add_argument("--repeats", type=int, default=5, help="top-1 repeats")
    parser.add_argument("--no-held-out", action="store_true",
                        help="leave out the held-out products' section")
    parser.add_argument("--no-panel", action="store_true", help="leave out the by-eye panel")
    args = parser.parse_args(argv)
    try:
        report = shop_report(args.run, args.judge, args.seed, args.max_tries, args.repeats,
                             args.out, not args.no_held_out, not args.no_panel)
    except (FileNotFoundError, ValueError) as error:
        parser.exit(1, f"evaluate: {error}\n")
    print(format_shop_table(report["shop"]))
    print(f"evaluate: wrote {args.out} and {os.path.splitext(args.out)[0]}.md")
    return report
