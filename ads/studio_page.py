"""The studio's page, served by studio.py: ads/studio_static/ holds its HTML, stylesheet
and script (no CDN: the studio works offline).

Every user-supplied string reaches the page through `textContent` or an attribute value,
never `innerHTML`, and the Content-Security-Policy allows only this script, so copy such
as "<script>" is shown as text and never runs.
"""

import functools
import os

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "studio_static")
FILES = {"/": ("index.html", "text/html; charset=utf-8"),
         "/studio.css": ("studio.css", "text/css; charset=utf-8"),
         "/studio.js": ("studio.js", "text/javascript; charset=utf-8")}


@functools.cache
def static_file(path):
    """(content type, bytes) of the page file served at `path`, or None."""
    if path not in FILES:
        return None
    name, content_type = FILES[path]
    with open(os.path.join(STATIC_DIR, name), "rb") as f:
        return content_type, f.read()
