"""Finished ad creatives: a generated product image + headline, price and call to action.

    python -m ads.creative --model exports/adgan/1 --prompt "红色连衣裙" --headline "新款连衣裙"
                           --price "¥199" --size 1080x1080 --template hero --out-dir creatives/
    python -m ads.creative --from-sidecar creatives/creative.json --out-dir again/   # same pixels
    python -m ads.creative --prompt "红色连衣裙" --price "¥199"   # the shipped model (models/adgan)

Standard sizes (1080x1080, 1200x628, 300x250, 728x90) and three layout templates ("hero":
product above the copy, "split": product beside the copy, "banner": one row of product,
headline and button, for wide strips). Copy in Chinese or English is wrapped (by word, or
by character for Chinese) and shrunk to fit its box, cut with an ellipsis only if even the
smallest size cannot hold it; the copy box never overlaps the product. The product is
drawn at `--product-size` (default the largest the model gives: 256 px, the shipped
model's 64 px through its learned up-sampler) and fitted to its box with Lanczos and an
unsharp mask. "AI生成" / "AI-generated" goes in a free corner (ads/ai_label.py; off only
with `--no-ai-label`), the PNG carries the implicit labels (labels.py), and a JSON sidecar
records them with the prompt, seed, score, template, size, product size (and how it was
enlarged) and copy, from which `--from-sidecar` redraws the same pixels.
"""

import argparse
import dataclasses
import hashlib
import json
import os
import re

import numpy as np
from PIL import Image, ImageDraw

from adgan import fonts, labels
from adgan.helpers import HAN_CHARACTERS, has_han, run_command, write_json
from adgan.upsampling.upsampler import pil_lanczos_unsharp
from ads import ai_label, sources

SIZES = {"1080x1080": (1080, 1080), "1200x628": (1200, 628), "300x250": (300, 250),
         "728x90": (728, 90)}
TEMPLATES = ("hero", "split", "banner")
# Wrapping units: one Han character, a run of other non-space characters, or white space.
WRAP_TOKENS = re.compile(f"[{HAN_CHARACTERS}]|[^\\s{HAN_CHARACTERS}]+|\\s+")
MAX_COPY = {"headline": 200, "price": 40, "cta": 40}
DEFAULT_CTA = {"zh": "立即购买", "en": "Shop now"}
INK, MUTED, PAPER = (28, 28, 30), (90, 90, 96), (255, 255, 255)


class CopyError(ValueError):
    """Ad copy that cannot be set (empty headline, too long, or glyphs the font lacks)."""


@dataclasses.dataclass(frozen=True)
class Copy:
    """The words of one creative."""

    headline: str
    price: str = ""
    cta: str = ""  # "" = "立即购买" or "Shop now", by the headline's language


def language(text):
    """"zh" if the text has a Han character, else "en"."""
    return "zh" if has_han(text) else "en"


def check_copy(copy):
    """The copy with its default CTA filled in; raises `CopyError` naming the problem."""
    headline = " ".join(copy.headline.split())
    if not headline:
        raise CopyError("headline is empty")
    values = {"headline": headline, "price": " ".join(copy.price.split()),
              "cta": " ".join(copy.cta.split()) or DEFAULT_CTA[language(headline)]}
    for name, value in values.items():
        if len(value) > MAX_COPY[name]:
            raise CopyError(f"{name} is {len(value)} characters; at most {MAX_COPY[name]}")
        if not fonts.covers(fonts.load(24), value):
            missing = sorted({ch for ch in value if not fonts.covers(fonts.load(24), ch)})
            raise CopyError(f"{name} has characters the font cannot draw: {''.join(missing)!r}")
    return Copy(**values)


def drawable(text):
    """`text` without the characters the font cannot draw (for copy made from user input)."""
    font = fonts.load(24)
    return " ".join("".join(ch for ch in text if fonts.covers(font, ch)).split())


# ----------------------------------------------------------------------------- text fitting

def wrap(text, font, width, draw):
    """Lines of `text` no wider than `width` (Latin by word, Han by character).

    A single word wider than the box is split by character.
    """
    tokens = WRAP_TOKENS.findall(text)
    lines, line = [], ""
    for token in tokens:
        candidate = line + token
        if draw.textlength(candidate.strip(), font=font) <= width or not line.strip():
            line = candidate
            while draw.textlength(line.strip(), font=font) > width and len(line.strip()) > 1:
                cut = len(line)  # one over-long word: break it by character
                while cut > 1 and draw.textlength(line[:cut].strip(), font=font) > width:
                    cut -= 1
                lines.append(line[:cut].strip())
                line = line[cut:]
        else:
            lines.append(line.strip())
            line = token.lstrip()
    if line.strip():
        lines.append(line.strip())
    return lines


def fit_text(text, box, draw, max_size, min_size, bold=False, max_lines=None):
    """(font, lines, truncated): the largest size in [min_size, max_size] whose wrapped lines
    fit box (width, height); at min_size, lines that do not fit are cut with an ellipsis."""
    width, height = box
    for size in range(int(max_size), int(min_size) - 1, -1):
        font = fonts.load(size, bold)
        lines = wrap(text, font, width, draw)
        if (len(lines) * line_height(font) <= height
                and (max_lines is None or len(lines) <= max_lines)):
            return font, lines, False
    font = fonts.load(int(min_size), bold)
    lines = wrap(text, font, width, draw)
    keep = max(1, min(max_lines or len(lines), int(height // line_height(font))))
    last = lines[keep - 1]
    while last and draw.textlength(last + "…", font=font) > width:
        last = last[:-1]
    return font, lines[:keep - 1] + [last + "…"], True


def line_height(font):
    """Pixels per line of text at this font's size."""
    return int(font.size * 1.25)


# ----------------------------------------------------------------------------- layout

def layout(template, size):
    """Boxes (left, top, right, bottom) of "product", "headline", "price" and "cta"."""
    width, height = size
    margin = max(4, int(min(width, height) * 0.05))
    if template == "banner" or height < 150:
        side = min(height - 2 * margin, int(width * 0.3))
        product = (margin, (height - side) // 2, margin + side, (height - side) // 2 + side)
        cta_width = int(width * 0.22)
        cta_height = min(int(height * 0.5), cta_width // 2)
        cta = (width - margin - cta_width, (height - cta_height) // 2, width - margin,
               (height + cta_height) // 2)
        text_left = product[2] + margin
        text_right = cta[0] - margin
        return {"product": product,
                "headline": (text_left, margin, text_right, int(height * 0.68)),
                "price": (text_left, int(height * 0.68), text_right, height - margin),
                "cta": cta}
    if template == "split" or width > height * 1.4:
        side = min(height - 2 * margin, int(width * 0.5))
        product = (margin, (height - side) // 2, margin + side, (height - side) // 2 + side)
        left, right = product[2] + 2 * margin, width - margin
        return {"product": product,
                "headline": (left, margin * 2, right, int(height * 0.55)),
                "price": (left, int(height * 0.55), right, int(height * 0.7)),
                "cta": (left, int(height * 0.74), left + int((right - left) * 0.75),
                        int(height * 0.74) + max(24, int(height * 0.14)))}
    # hero: a square product on top, the copy below
    side = int(min(width - 2 * margin, height * 0.58))
    product = ((width - side) // 2, margin, (width - side) // 2 + side, margin + side)
    top = product[3] + margin
    rest = height - margin - top
    return {"product": product,
            "headline": (margin, top, width - margin, top + int(rest * 0.5)),
            "price": (margin, top + int(rest * 0.5), width - margin, top + int(rest * 0.72)),
            # 30% of the width: the bottom corners stay free for the "AI-generated" label
            "cta": (width // 2 - int(width * 0.15), top + int(rest * 0.76),
                    width // 2 + int(width * 0.15), height - margin)}


def accent_color(product):
    """A darkened version of the product's mean non-white colour (for the button)."""
    pixels = np.asarray(product, np.float32).reshape(-1, 3)
    coloured = pixels[pixels.min(1) < 220]
    mean = coloured.mean(0) if len(coloured) else np.array([60.0, 60.0, 60.0])
    return tuple(int(c) for c in np.clip(mean * 0.7, 0, 200))


def compose(product, copy, template="hero", size="1080x1080", show_ai_label=True):
    """Draw one creative; returns (PIL RGB image, layout dict with the boxes actually used,
    "copy": the checked copy as a dict, "ai_label": the visible label's record (ai_label.py),
    or {"shown": False} when `show_ai_label` is off).

    product: uint8 RGB [S, S, 3]; copy: a `Copy` (checked here).
    """
    if template not in TEMPLATES:
        raise ValueError(f"template must be one of {', '.join(TEMPLATES)}, got {template!r}")
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    copy = check_copy(copy)
    width, height = SIZES[size]
    boxes = layout(template, (width, height))
    canvas = Image.new("RGB", (width, height), PAPER)
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = boxes["product"]
    canvas.paste(pil_lanczos_unsharp(product, right - left), (left, top))
    used = {"product": boxes["product"], "truncated": [], "copy": dataclasses.asdict(copy)}
    base = min(width, height)
    accent = accent_color(product)
    for name, color, max_size, bold in (("headline", INK, base * 0.11, True),
                                        ("price", accent, base * 0.09, True)):
        text = getattr(copy, name)
        if not text:
            continue
        l, t, r, b = boxes[name]
        font, lines, cut = fit_text(text, (r - l, b - t), draw, max(10, max_size), 10, bold)
        used[name] = draw_lines(draw, lines, font, (l, t, r, b), color,
                                center=template == "hero")
        if cut:
            used["truncated"].append(name)
    l, t, r, b = boxes["cta"]
    draw.rounded_rectangle((l, t, r, b), radius=(b - t) // 3, fill=accent)
    pad = max(2, (b - t) // 8)
    font, lines, cut = fit_text(copy.cta, (r - l - 2 * pad, b - t - 2 * pad), draw,
                                max(10, (b - t) * 0.5), 8, True, max_lines=1)
    used["cta"] = (l, t, r, b)
    used["cta_text"] = draw_lines(draw, lines, font, (l + pad, t + pad, r - pad, b - pad),
                                  PAPER, center=True, middle=True)
    if cut:
        used["truncated"].append("cta")
    inked = [used[k] for k in boxes if k in used]  # inside the boxes, but to be sure
    used["ai_label"] = (ai_label.draw_label(draw, language(copy.headline), (width, height),
                                            [*boxes.values(), *inked])
                        if show_ai_label else {"shown": False})
    return canvas, used


def draw_lines(draw, lines, font, box, color, center=False, middle=False):
    """Draw lines in box; returns the bounding box of the ink actually drawn."""
    l, t, r, b = box
    step = line_height(font)
    y = t + ((b - t) - step * len(lines)) // 2 if middle else t
    inked = [r, b, l, t]
    for line in lines:
        x = l + ((r - l) - draw.textlength(line, font=font)) / 2 if center else l
        bbox = draw.textbbox((x, y), line, font=font)
        draw.text((x, y), line, fill=color, font=font)
        inked = [min(inked[0], bbox[0]), min(inked[1], bbox[1]),
                 max(inked[2], bbox[2]), max(inked[3], bbox[3])]
        y += step
    return tuple(int(v) for v in inked)


# ----------------------------------------------------------------------------- files

def save_creative(image, sidecar, out_dir, name, producer=None):
    """Write NAME.png, labelled AI-generated (labels.py: its adgan:ExplicitLabel is the
    visible label's text, or "off"), and NAME.json, which records the implicit label too
    (atomically each); returns the PNG path."""
    os.makedirs(out_dir, exist_ok=True)
    png = os.path.join(out_dir, name + ".png")
    shown = sidecar["layout"]["ai_label"]
    label = labels.save_labelled_png(image, png, producer,
                                     shown["text"] if shown["shown"] else labels.EXPLICIT_OFF)
    sidecar = {**sidecar, "implicit_label": label}
    write_json(sidecar, os.path.join(out_dir, name + ".json"))
    return png


def creative_name(prompt, seed, template, size):
    """A file name that is safe on any system and unique per (prompt, seed, template, size)."""
    digest = hashlib.sha1(f"{prompt}|{seed}|{template}|{size}".encode()).hexdigest()[:10]
    return f"creative-{template}-{size}-{seed}-{digest}"


def make_creative(source, prompt, copy, seed=0, template="hero", size="1080x1080",
                  num_candidates=8, product_size=None, show_ai_label=True):
    """Generate the product for `prompt` with `source` (see `sources.load_source`) at
    `product_size` (default the largest it gives), compose it; returns (image, sidecar)."""
    drawn = source.generate([prompt], [seed], num_candidates, product_size)
    return compose_with_sidecar({k: v[0] for k, v in drawn.items()}, prompt, copy, seed,
                                template, size, num_candidates, source.describe(), show_ai_label)


def compose_with_sidecar(drawn, prompt, copy, seed, template, size, num_candidates, model,
                         show_ai_label=True):
    """`compose` one drawn product ({"images": [S, S, 3], "score", "accepted", "tries"});
    returns (image, sidecar dict: everything `--from-sidecar` needs to redraw it)."""
    image, used = compose(drawn["images"], copy, template, size, show_ai_label)
    side = int(drawn["images"].shape[0])
    sidecar = {"prompt": prompt, "seed": int(seed), "num_candidates": int(num_candidates),
               "score": float(drawn["score"]), "accepted": bool(drawn["accepted"]),
               "tries": int(drawn["tries"]), "template": template, "size": size,
               # the product's side as drawn, and what enlarged it from the model's own size
               "product_size": side, "product_upsampler": (
                   "none" if side == model.get("image_size") else model.get("upsampler")),
               "copy": used.pop("copy"), "model": model,
               "layout": used, "font": os.path.basename(fonts.font_path(True))}
    if "drawn_as" in drawn:  # what the model read of the prompt (understanding.py)
        sidecar["understood"] = {"drawn_as": str(drawn["drawn_as"]),
                                 "ignored": str(drawn["ignored"])}
    return image, sidecar


def make_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="an exported SavedModel version folder (export.py; "
                                        "default: the shipped model, models/adgan)")
    parser.add_argument("--run", help="or a training run folder")
    parser.add_argument("--prompt", help="what to draw, e.g. 红色连衣裙")
    parser.add_argument("--headline", help="headline copy (default: the prompt)")
    parser.add_argument("--price", default="", help="e.g. ¥199 or $29.99")
    parser.add_argument("--cta", default="", help="button text (default 立即购买 / Shop now)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-candidates", type=int, default=8, help="the gate's budget")
    parser.add_argument("--no-gate", action="store_true",
                        help="with --run: keep each seed's first candidate (needed for an "
                             "uncalibrated run)")
    parser.add_argument("--template", choices=TEMPLATES, default="hero")
    parser.add_argument("--size", choices=sorted(SIZES), action="append",
                        help="ad size (repeatable; default all four)")
    parser.add_argument("--product-size", type=int,
                        help="the product's side before it is fitted to its box: the model's "
                             "own (64) or 2x / 4x it (128, 256: the default)")
    parser.add_argument("--from-sidecar", help="redraw the creative a sidecar JSON describes")
    parser.add_argument("--out-dir", default="creatives", help="where creatives go")
    parser.add_argument("--no-ai-label", action="store_true",
                        help="leave out the visible AI生成 / AI-generated label (recorded in the "
                             "sidecar and the PNG's implicit label; publishing such an image "
                             "in China breaks GB 45438)")
    labels.add_producer_flag(parser)
    return parser


def check_sidecar_fields(saved):
    """TypeError naming the first field of a sidecar that has the wrong type or value."""
    whole = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
    checks = {"prompt": lambda v: isinstance(v, str) and v.strip(),
              "seed": lambda v: v is None or (whole(v) and 0 <= v < 2 ** 62),
              "template": lambda v: isinstance(v, str) and v in TEMPLATES,
              "size": lambda v: isinstance(v, str) and v in SIZES,
              "num_candidates": lambda v: whole(v) and 1 <= v <= 64,
              "copy": lambda v: isinstance(v, dict), "model": lambda v: isinstance(v, dict),
              "layout": lambda v: isinstance(v, dict)}
    for name, ok in checks.items():
        if not ok(saved[name]):
            raise TypeError(f"field {name!r} has an unusable value {str(saved[name])[:40]!r}")


def main(argv=None):
    """CLI: returns the PNG paths written."""
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.from_sidecar:
        try:
            with open(args.from_sidecar, encoding="utf-8") as f:
                saved = json.load(f)
            args.prompt, args.seed, args.template = saved["prompt"], saved["seed"], saved["template"]
            args.size, args.num_candidates = [saved["size"]], saved["num_candidates"]
            check_sidecar_fields(saved)
            # a sidecar from before the up-sampler drew the product at the model's own size
            args.product_size = saved.get("product_size", "native")
            shown = saved["layout"].get("ai_label")  # turned off then: off again
            args.no_ai_label |= isinstance(shown, dict) and shown.get("shown") is False
            copy = Copy(**saved["copy"])
            args.model = args.model or saved["model"].get("model")
            args.run = args.run or saved["model"].get("run")
        except (OSError, ValueError, KeyError, TypeError) as error:
            parser.exit(1, f"creative: cannot use sidecar {args.from_sidecar}: {error}\n")
    else:
        if not args.prompt:
            parser.error("--prompt is required (or --from-sidecar)")
        copy = Copy(args.headline if args.headline is not None else args.prompt, args.price,
                    args.cta)
    try:
        copy = check_copy(copy)
        source = sources.load_source(model=args.model, run=args.run, gated=not args.no_gate)
        if args.product_size == "native":
            args.product_size = source.image_size
        paths = []
        for size in args.size or sorted(SIZES):
            image, sidecar = make_creative(source, args.prompt, copy, args.seed, args.template,
                                           size, args.num_candidates, args.product_size,
                                           not args.no_ai_label)
            paths.append(save_creative(image, sidecar, args.out_dir,
                                       creative_name(args.prompt, args.seed, args.template,
                                                     size), args.producer))
    except (CopyError, fonts.FontMissing, sources.SourceError) as error:
        parser.exit(1, f"creative: {error}\n")
    for path in paths:
        print(f"creative: wrote {path} and its .json sidecar")
    return paths


def console_main(argv=None):
    """Entry point of the installed console script: exit status 0 on success, else one line
    saying what went wrong (`helpers.run_command`)."""
    run_command(lambda: main(argv), "creative")


if __name__ == "__main__":
    console_main()
