"""The evaluation report's files: report.json, report.md (tables) and its sample pictures."""

import os
from collections import Counter

import numpy as np

from adgan.data import colors
from adgan.helpers import make_grid, save_png, write_json, write_text


def same_size(cells):
    """uint8 images of power-of-two sides (runs of 32 and 64 px in one report) enlarged with
    nearest-neighbour to the largest side, stacked: [N, S, S, 3]."""
    side = max(cell.shape[0] for cell in cells)
    return np.stack([cell.repeat(side // cell.shape[0], axis=0).repeat(side // cell.shape[1],
                                                                        axis=1)
                     for cell in cells])


def report_picture(prompts, real_prompts, pictures, count=8):
    """uint8 grid, enlarged 2x: one row per prompt (the first `count`): a real image, then
    the samples of each generated row of the report."""
    real = pictures["real"]
    generated = {k: v for k, v in pictures.items() if k not in ("real", "color", "judge_panel")}
    first_real = {}
    for image_index, prompt_indices in enumerate(real_prompts):
        for prompt in prompt_indices:
            first_real.setdefault(prompt, image_index)
    shown = [p for p in range(len(prompts)) if p in first_real][:count]
    cells = []
    for prompt in shown:
        cells.append(real[first_real[prompt]])
        for images in generated.values():
            cells.extend(images[prompt])
    grid = make_grid(same_size(cells), rows=len(shown))
    return grid.repeat(2, axis=0).repeat(2, axis=1), [prompts[p] for p in shown]


def color_picture(prompts, pictures, concepts=2, rows=2):
    """uint8 grid, enlarged 2x: per palette colour of the first `concepts` concepts, the
    samples of the first `rows` generated rows (the first run, ungated and gated)."""
    count = len(colors.PALETTE)
    shown = list(range(min(concepts, len(prompts) // count) * count))
    first = list(pictures.values())[:rows]
    cells = [image for p in shown for images in first for image in images[p]]
    grid = make_grid(same_size(cells), rows=len(shown))
    return grid.repeat(2, axis=0).repeat(2, axis=1), [prompts[p] for p in shown]


def format_table(report):
    """Markdown table of the report's rows (an Inception FID column when it was measured)."""
    def number(value, digits=3):
        return "–" if value is None else f"{value:.{digits}f}"

    inception = any("fid_inception" in row for row in report["rows"].values())
    headers = [f"R-precision (top-1 of {report['r_precision_candidates']})",
               "FID (in-domain encoder)", "KID ×1000", "diversity", "accepted", "tries / image"]
    headers += ["FID (Inception)"] if inception else []
    lines = ["| | " + " | ".join(headers) + " |", "|---" * (len(headers) + 1) + "|"]
    for label, row in report["rows"].items():
        kid = row.get("kid_in_domain")
        cells = [f"{row['r_precision']:.3f} ± {row['r_precision_std']:.3f}",
                 number(row.get("fid_in_domain"), 2),
                 "–" if kid is None else f"{1000 * kid:.1f} ± {1000 * row['kid_in_domain_std']:.1f}",
                 number(row["diversity"]), number(row.get("accepted"), 2),
                 number(row.get("tries_per_image"), 2)]
        cells += [number(row.get("fid_inception"), 2)] if inception else []
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_color_table(color):
    """Markdown table of a report's colour section: accuracy overall and per colour."""
    lines = ["| | colour accuracy | " + " | ".join(color["colors"]) + " |",
             "|---" * (len(color["colors"]) + 2) + "|"]
    for label, row in color["rows"].items():
        lines.append(f"| {label} | {row['accuracy']:.3f} | "
                     + " | ".join("–" if row["per_color"][c] is None
                                  else f"{row['per_color'][c]:.2f}" for c in color["colors"])
                     + " |")
    return "\n".join(lines)


def format_bundle_table(section):
    """Markdown table of a report's two-object section: each row's rate on seen and on
    held-out pairs."""
    sets = list(section["pairs"])
    labels = list(dict.fromkeys(label for name in sets
                                for label in section["pairs"][name]["rows"]))
    lines = ["| two-object rate | " + " | ".join(
                 f"{name} ({section['pairs'][name]['pairs']})" for name in sets) + " |",
             "|---" * (len(sets) + 1) + "|"]
    for label in labels:
        cells = [section["pairs"][name]["rows"].get(label) for name in sets]
        lines.append(f"| {label} | " + " | ".join(
            "–" if cell is None else f"{cell['two_object_rate']:.3f}" for cell in cells) + " |")
    return "\n".join(lines)


def format_judge_table(section):
    """Markdown table of the judge's section: per concept set and style, the real drawings'
    top-1 (the ceiling) and that of those the judge never saw, then each run's and
    language's top-1 and its ratio to the ceiling."""
    sets = section["sets"]
    reals = ("real", "real, unseen by the judge")
    labels = list(dict.fromkeys(label for contents in sets.values()
                                for row in contents["styles"].values() for label in row
                                if label not in reals))
    lines = ["| concepts | style | real (ceiling) | real, unseen by the judge | " + " | ".join(
                 f"{label} (÷ real)" for label in labels) + " |",
             "|---" * (len(labels) + 4) + "|"]
    for name, contents in sets.items():
        for style, row in contents["styles"].items():
            cells = []
            for label in reals:
                real = row.get(label)
                cells.append("–" if real is None or not real["images"]
                             else f"{real['top1']:.3f} ({real['images']})")
            for label in labels:
                cell = row.get(label)
                cells.append("–" if cell is None else f"{cell['top1']:.3f}" + (
                    "" if cell["ratio"] is None else f" ({cell['ratio']:.2f})"))
            lines.append(f"| {name} ({contents['concepts']}) | {style} | " + " | ".join(cells)
                         + " |")
    return "\n".join(lines)


def format_panel_table(panel):
    """Markdown table of the judged panel: per prompt, each run's top-1 rate and the
    judge's most frequent first guess."""
    labels = list(panel["runs"])
    lines = ["| prompt | " + " | ".join(f"{label}: top-1, most frequent guess"
                                        for label in labels) + " |",
             "|---" * (len(labels) + 1) + "|"]
    for prompt in panel["prompts"]:
        cells = []
        for label in labels:
            row = panel["runs"][label].get(prompt)
            if row is None:
                cells.append("not a concept of the judge")
                continue
            guesses = row["first_guesses"]
            (common, count), = Counter(guesses).most_common(1)  # ties: the first drawn
            cells.append(f"{row['top1']:.2f}, {common} ({count}/{len(guesses)})")
        lines.append(f"| {prompt} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_copy_table(panel):
    """Markdown table of the panel's copy check (`judging.copy_check`): per prompt and run,
    the median distance of a draw to its nearest real drawing against a restyle's."""
    labels = list(panel["runs"])
    lines = ["| prompt | " + " | ".join(f"{label}: pixels (restyle), judge features "
                                        "(restyle), nearer than a restyle" for label in labels)
             + " |", "|---" * (len(labels) + 1) + "|"]
    number = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
    for prompt in panel["prompts"]:
        cells = []
        for label in labels:
            check = panel["runs"][label].get(prompt, {}).get("copy_check")
            cells.append("-" if check is None else
                         f"{number(check['pixel_distance'])} "
                         f"({number(check['restyle_pixel_distance'])}), "
                         f"{number(check['feature_distance'])} "
                         f"({number(check['restyle_feature_distance'])}), "
                         f"{number(check['nearer_than_a_restyle'])}")
        lines.append(f"| {prompt} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def nearest_picture(pictures, count=4):
    """Rows of draws and, under each, its nearest real drawing (`<label> nearest`):
    per prompt, the first `count` draws of each run."""
    cells, rows = [], 0
    for label, images in pictures.items():
        if label.endswith(" nearest"):
            continue
        for drawn, nearest in zip(images, pictures[f"{label} nearest"]):
            cells += list(drawn[:count]) + list(nearest[:count])
            rows += 2
    return make_grid(same_size(cells), rows=rows)


def judge_text(section, stem, panel_pictures):
    """The judge's part of report.md (and its panel pictures, `<stem>_panel.png` and
    `<stem>_nearest.png`)."""
    text = ["## The independent judge", "",
            f"Judge `{section['judge']}`: top-1 among {section['candidates']} concepts of "
            f"{', '.join(section['groups'])}, mean of {section['repeats']} draws of the "
            f"distractors. Generated: one draw per prompt (seed {section['sample']}, "
            + (f"gated, up to {section['max_tries']} tries" if section["gated"] else "ungated")
            + "), the prompt naming the concept and the style; real: the drawings of that "
            "style (in brackets: how many), and those of them the judge never trained on.", "",
            format_judge_table(section)]
    if "bundles" in section:
        found = section["bundles"]
        text += ["", f"### Bundles, as the judge reads them ({found['pairs']} pairs of seen "
                 f"concepts, {found['prompts']} prompts, e.g. {', '.join(found['examples'])})",
                 "", "| pictures | two-object rate | images |", "|---|---|---|"]
        text += [f"| {label} | {row['two_object_rate']:.3f} | {row['images']} |"
                 for label, row in found["rows"].items()]
    if "diversity" in section:
        found = section["diversity"]
        text += ["", f"### Diversity within a style ({found['concepts']} seen concepts, "
                 f"{found['per_prompt']} draws each; real across styles "
                 f"{found['real across styles']:.3f})", "",
                 "| run | style | within a style (judge features) | ÷ real across styles |",
                 "|---|---|---|---|"]
        text += [f"| {run} | {style} | {row['within_style']:.3f} | {row['ratio']:.2f} |"
                 for run, rows in found["runs"].items() for style, row in rows.items()]
    if "panel" in section and panel_pictures:
        drawn = {k: v for k, v in panel_pictures.items() if not k.endswith(" nearest")}
        cells = [image for prompt_images in zip(*drawn.values())
                 for images in prompt_images for image in images]
        rows = len(next(iter(drawn.values())))
        save_png(make_grid(same_size(cells), rows=rows), stem + "_panel.png")
        save_png(nearest_picture(panel_pictures), stem + "_nearest.png")
        text += ["", "### The by-eye panel, as the judge reads it", "",
                 format_panel_table(section["panel"]), "",
                 f"![panel]({os.path.basename(stem)}_panel.png)", "",
                 f"Rows: the prompts above (those the judge knows); columns: "
                 f"{section['panel']['samples_per_prompt']} draws of each of "
                 f"{', '.join(drawn)}.", "",
                 "### Generated, or copied?", "",
                 "Median over each row's draws of the distance to the nearest real drawing "
                 "(a training drawing, or a held-out product's own; RMS pixel difference on "
                 "a 0-1 scale at the judge's side; cosine distance of the judge's features), "
                 "in brackets the median distance from a "
                 "real drawing of the product to its nearest drawing of it in another style "
                 "(a restyle); last, the share of draws nearer in pixels than that.", "",
                 format_copy_table(section["panel"]), "",
                 f"![nearest]({os.path.basename(stem)}_nearest.png)", "",
                 "Each prompt: a row of draws, under it the nearest real drawing of each."]
    return text


def write_report(report, prompts, real_prompts, pictures, out):
    """Write report.json, report.md and report.png (atomically each); a judge-only report
    (no "rows") has its json, md and panel picture."""
    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    stem = os.path.splitext(out)[0]
    write_json(report, out)  # first: the numbers outlive a failing picture
    judged = (judge_text(report["judge"], stem, pictures.get("judge_panel"))
              if "judge" in report else [])
    if "rows" not in report:
        colored = ([f"## Colour accuracy ({report['color']['prompts']} prompts)", "",
                    format_color_table(report["color"]), ""] if "color" in report else [])
        write_text("\n".join(["# Evaluation by the independent judge", "", *judged, "",
                              *colored]) + "\n", stem + ".md")
        return
    grid, shown = report_picture(prompts, real_prompts, pictures)
    save_png(grid, stem + ".png")
    samples = report["samples_per_prompt"]
    labels = [label for label in pictures if label not in ("real", "color")]
    text = [f"# Evaluation ({report['split']} split)", "",
            f"{report['prompts']} prompts of {report['concepts']} concepts, "
            f"{report['real_images']} real images, {samples} samples per prompt; "
            f"R-precision over {report['repeats']} repeats; encoder `{report['encoder']}`. "
            "FID and KID are computed on the in-domain encoder's image features, "
            "not Inception's. "
            + ("The samples of a prompt name the drawing styles their seeds pick, as "
               "generate.py draws them (`--style varied`)."
               if report.get("style", "none") == "varied" else
               "The prompts are drawn as they are (`--style none`)."),
            "", format_table(report), "",
            f"![samples]({os.path.basename(stem)}.png)", "",
            f"Rows: {', '.join(shown)}. Columns: a real image, then {samples} samples each of "
            f"{'; '.join(labels)}."]
    if "color" in report:
        color_prompts, color_images = pictures["color"]
        grid, shown = color_picture(color_prompts, color_images)
        save_png(grid, stem + "_color.png")
        text += ["", "## Colour accuracy", "",
                 f"{report['color']['prompts']} prompts (each recolourable concept's names with "
                 "each colour word), the dominant colour of the product's pixels against the "
                 f"prompt's; chance {report['color']['chance']:.3f}.", "",
                 format_color_table(report["color"]), "",
                 f"![colour samples]({os.path.basename(stem)}_color.png)", "",
                 f"Rows: {', '.join(shown)}. Columns: {samples} samples each of "
                 f"{'; '.join(list(color_images)[:2])}."]
    if "bundles" in report:
        text += ["", "## Two products in one picture", "",
                 "For prompts naming two products (\"A和B\", \"A and B\"), the evaluator reads "
                 "each half of the picture; it passes when one half ranks A first and the other "
                 f"B first among {report['bundles']['candidates']} concepts.", "",
                 format_bundle_table(report["bundles"])]
    write_text("\n".join(text + ([""] + judged if judged else [])) + "\n", stem + ".md")


