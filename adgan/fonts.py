"""The CJK-capable font that ad creatives and charts are set in.

adgan draws Chinese and English copy, so it needs a font with Han glyphs; a
Latin-only font would draw "tofu" boxes. The README's setup installs Debian's
`fonts-wqy-microhei` (1.6 MB); Noto Sans CJK (`fonts-noto-cjk`) is used when
present, and `ADGAN_FONT=/path/to/font.ttf` overrides both.
"""

import functools
import os

from PIL import ImageFont

CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
)
BOLD_CANDIDATES = ("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",)
INSTALL_HINT = "sudo apt-get install -y fonts-wqy-microhei (or set ADGAN_FONT=/path/to/cjk.ttf)"


class FontMissing(RuntimeError):
    """No CJK-capable font is installed."""


def covers(font, text):
    """True if `font` draws every non-space character of `text` with a real glyph.

    A character the font lacks is drawn as its .notdef box ("tofu"), the same
    bitmap as an unassigned code point's, which is what this compares against.
    """
    def bitmap(ch):
        mask = font.getmask(ch)
        return mask.size, bytes(mask)

    tofu = bitmap("\U0010fffd")
    return all(ch.isspace() or bitmap(ch) != tofu for ch in text)


@functools.lru_cache(maxsize=None)
def font_path(bold=False):
    """Path of the font to use; raises `FontMissing` naming the package to install."""
    override = os.environ.get("ADGAN_FONT")
    if override:
        if not os.path.exists(override):
            raise FontMissing(f"ADGAN_FONT={override} does not exist")
        return override
    for path in (BOLD_CANDIDATES if bold else ()) + CANDIDATES:
        if os.path.exists(path):
            return path
    raise FontMissing(f"no CJK font found (looked for {', '.join(CANDIDATES)}); install one: "
                      f"{INSTALL_HINT}")


@functools.lru_cache(maxsize=None)
def load(size, bold=False):
    """The CJK font at `size` pixels."""
    return ImageFont.truetype(font_path(bold), size)
