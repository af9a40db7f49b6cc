"""The eight drawing styles of the shipped emoji set: where each comes from and how it renders.

Every style is one pinned npm package, fetched as a tarball with `npm pack` (nothing
is installed) and read with the standard library:

  * Iconify JSON sets (`@iconify-json/*`): SVG bodies in `icons.json`, rendered with
    `resvg-py`; `chars.json` maps codepoints to icon names. Fluent colour has no
    `chars.json` of its own and shares Fluent flat's icon names; Firefox OS emoji and
    EmojiOne v1 have names only, matched to a concept by exact name (see `name_index`).
  * `@lobehub/fluent-emoji-3d`: 256x256 WebP files named by codepoints.

A concept is keyed by its codepoints without U+FE0F (variation selector 16), the
way every package names its files.
"""

import dataclasses
import io
import json
import os
import re
import subprocess
import tarfile

from PIL import Image


@dataclasses.dataclass(frozen=True)
class Style:
    """One drawing style: its manifest id, source package, licence and prompt words."""

    style: str  # the manifest's `style` value and the image folder
    title: str
    package: str  # npm name
    version: str
    license: str  # SPDX
    word_en: str  # the word that asks for this style in a prompt ("3d handbag")
    word_zh: str  # ... and in Chinese ("立体 手提包")
    match: str  # how a concept finds its icon: chars | shared-chars | unicode-name | cldr-slug | file


STYLES = (
    Style("noto", "Noto Color Emoji (Google)", "@iconify-json/noto", "1.2.9", "Apache-2.0",
          "noto", "谷歌", "chars"),
    Style("twemoji", "Twemoji (Twitter)", "@iconify-json/twemoji", "1.2.5", "CC-BY-4.0",
          "twemoji", "推特", "chars"),
    Style("fluent-3d", "Fluent Emoji 3D (Microsoft)", "@lobehub/fluent-emoji-3d", "1.1.0", "MIT",
          "3d", "立体", "file"),
    Style("fluent", "Fluent Emoji colour (Microsoft)", "@iconify-json/fluent-emoji", "1.2.7",
          "MIT", "gradient", "渐变", "shared-chars"),
    Style("fluent-flat", "Fluent Emoji flat (Microsoft)", "@iconify-json/fluent-emoji-flat",
          "1.2.6", "MIT", "flat", "扁平", "chars"),
    Style("openmoji", "OpenMoji", "@iconify-json/openmoji", "1.2.29", "CC-BY-SA-4.0",
          "outlined", "描边", "chars"),
    Style("fxemoji", "Firefox OS Emoji (Mozilla)", "@iconify-json/fxemoji", "1.2.2", "Apache-2.0",
          "firefox", "火狐", "unicode-name"),
    Style("emojione", "EmojiOne v1", "@iconify-json/emojione-v1", "1.2.3", "CC-BY-SA-4.0",
          "emojione", "经典", "cldr-slug"),
)
SHARED_CHARS = "fluent-flat"  # the style whose chars.json Fluent colour ("shared-chars") uses
# Exact name matches whose drawing shows something else than the concept today means.
WRONG_DRAWINGS = {("emojione", "1f4bb"): "laptop drawn as a desktop monitor (the old meaning)",
                  ("fxemoji", "1f4bb"): "laptop drawn as a desktop monitor (the old meaning)"}
SVG_HEADER = ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
              'width="{w}" height="{h}" viewBox="{left} {top} {w} {h}">')


class BuildError(RuntimeError):
    """A package that cannot be fetched or read, or an image that cannot be rendered."""


def concept_key(codepoints):
    """'1f9d1-200d-1f373': the codepoints without U+FE0F, as every package names files."""
    return "-".join(f"{c:x}" for c in codepoints if c != 0xFE0F)


def tarball_name(style):
    """`npm pack`'s file name: '@lobehub/fluent-emoji-3d' 1.1.0 -> lobehub-fluent-emoji-3d-1.1.0.tgz."""
    return f"{style.package.lstrip('@').replace('/', '-')}-{style.version}.tgz"


def fetch_packages(folder, styles=STYLES):
    """Fetch every style's pinned tarball into `folder` with `npm pack` (kept if present)."""
    os.makedirs(folder, exist_ok=True)
    for style in styles:
        if os.path.exists(os.path.join(folder, tarball_name(style))):
            continue
        spec = f"{style.package}@{style.version}"
        try:
            subprocess.run(["npm", "pack", spec, "--silent", "--pack-destination", folder],
                           check=True, capture_output=True, text=True)
        except (OSError, subprocess.CalledProcessError) as error:
            detail = getattr(error, "stderr", "") or str(error)
            raise BuildError(f"cannot fetch npm package {spec}: "
                             f"{detail.strip().splitlines()[-1] if detail.strip() else error}")
    return folder


def unpack(folder, style, into):
    """Extract a style's tarball into `into`; return the package root."""
    tarball = os.path.join(folder, tarball_name(style))
    target = os.path.join(into, style.style)
    try:
        with tarfile.open(tarball) as archive:
            archive.extractall(target, filter="data")
    except (OSError, tarfile.TarError) as error:
        raise BuildError(f"cannot read package {tarball}: {error}")
    return os.path.join(target, "package")


def read_json(path):
    """A package's JSON file, or BuildError naming it."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as error:
        raise BuildError(f"cannot read {path}: {error}")


def squash(name):
    """'Automated Teller Machine' -> 'automatedtellermachine' (Firefox OS emoji names)."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def slug(name):
    """'Face Savoring Food' -> 'face-savoring-food' (EmojiOne v1 names)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def name_index(icon_set, concepts, style):
    """{concept key: icon name} for a set that has names only.

    A concept's candidate names are its Unicode character name (single-codepoint emoji)
    and its CLDR/emoji-test short name, written the set's way (`squash` or `slug`). Only
    exact matches count, and an icon two concepts would share is given to neither.
    """
    names = set(icon_set["icons"]) | {alias for alias, entry in icon_set.get("aliases", {}).items()
                                      if set(entry) == {"parent"}}
    write = squash if style.match == "unicode-name" else slug
    claims = {}
    for concept in concepts:
        candidates = [write(n) for n in concept["names"] if n]
        hit = next((n for n in candidates if n in names), None)
        if hit:
            claims.setdefault(hit, []).append(concept["key"])
    return {keys[0]: name for name, keys in claims.items() if len(keys) == 1}


class IconifySource:
    """Icons of one Iconify JSON set, rendered to RGBA with resvg."""

    def __init__(self, root, chars=None):
        self.icons = read_json(os.path.join(root, "icons.json"))
        self.chars = chars if chars is not None else read_json(os.path.join(root, "chars.json"))
        self.name = self.icons.get("prefix", root)

    def resolve(self, name):
        """The icon entry for a name or a plain alias (one without flips or rotation)."""
        if name in self.icons["icons"]:
            return self.icons["icons"][name]
        alias = self.icons.get("aliases", {}).get(name)
        if alias and set(alias) == {"parent"}:
            return self.resolve(alias["parent"])
        return None

    def render(self, name, pixels):
        """RGBA image of icon `name`, its longer side `pixels`."""
        import resvg_py  # imported here: only building the set needs the rasteriser

        icon = self.resolve(name)
        if icon is None:
            raise BuildError(f"icon {self.name}:{name} is named in chars.json but not in icons.json")
        width = icon.get("width", self.icons.get("width", 16))
        height = icon.get("height", self.icons.get("height", 16))
        document = SVG_HEADER.format(w=width, h=height, left=icon.get("left", 0),
                                     top=icon.get("top", 0)) + icon["body"] + "</svg>"
        scale = pixels / max(width, height)
        try:
            png = resvg_py.svg_to_bytes(svg_string=document, skip_system_fonts=True,
                                        width=round(width * scale), height=round(height * scale))
            return Image.open(io.BytesIO(bytes(png))).convert("RGBA")
        except (ValueError, OSError) as error:
            raise BuildError(f"cannot render icon {self.name}:{name}: {error}")


class FileSource:
    """Fluent 3D: one WebP file per concept, named by codepoints."""

    def __init__(self, root):
        self.folder = os.path.join(root, "assets")
        self.name = self.folder

    def render(self, name, pixels):
        """RGBA image of the file `name` (its own 256 px; the caller resizes)."""
        path = os.path.join(self.folder, name)
        try:
            with Image.open(path) as image:
                return image.convert("RGBA")
        except OSError as error:
            raise BuildError(f"cannot decode {path}: {error}")


def file_index(folder):
    """{concept key: file name} of a folder of '1f45c.webp'-style files."""
    index = {}
    for name in sorted(os.listdir(folder)):
        stem, _ = os.path.splitext(name)
        try:
            index.setdefault(concept_key(int(part, 16) for part in stem.split("-")), name)
        except ValueError:
            continue  # not a codepoint file
    return index


def open_style(style, packages, work, concepts, shared_chars):
    """(source, {concept key: icon or file name}) of one style, its package unpacked in `work`."""
    root = unpack(packages, style, work)
    if style.match == "file":
        source = FileSource(root)
        return source, file_index(source.folder)
    source = IconifySource(root, chars={} if style.match != "chars" else None)
    if style.match == "chars":
        index = {key: name for key, name in source.chars.items()}
    elif style.match == "shared-chars":  # Fluent colour: SHARED_CHARS's names
        index = {key: name for key, name in shared_chars.items() if source.resolve(name)}
    else:
        index = name_index(source.icons, concepts, style)
    return source, {key: name for key, name in index.items()
                    if (style.style, key) not in WRONG_DRAWINGS}
