"""The README is a front page and every relative link in it and in docs/ resolves."""

import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# [text](target) and ![alt](target); a target ends at whitespace or ")"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def markdown_files():
    """README.md and every page under docs/ (relative paths from the checkout)."""
    found = ["README.md"]
    for folder, _, names in os.walk(os.path.join(ROOT, "docs")):
        found += [os.path.relpath(os.path.join(folder, name), ROOT)
                  for name in sorted(names) if name.endswith(".md")]
    return found


def relative_links(text):
    """The link targets of a markdown text outside fenced code that point into the
    checkout (no scheme, no pure #anchor), without their #anchor."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    targets = (target.split("#")[0] for target in LINK.findall(text))
    return [t for t in targets if t and not re.match(r"^[a-z]+:", t)]


def test_links_are_found_outside_code_only():
    text = "[a](docs/x.md#h) ![b](pic.png) [c](https://x.org) [d](#top)\n```\n[e](no.md)\n```"
    assert relative_links(text) == ["docs/x.md", "pic.png"]


def test_the_readme_is_a_front_page_of_at_most_200_lines():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        assert len(f.read().splitlines()) <= 200


@pytest.mark.parametrize("page", markdown_files())
def test_every_relative_link_resolves(page):
    with open(os.path.join(ROOT, page), encoding="utf-8") as f:
        links = relative_links(f.read())
    folder = os.path.dirname(os.path.join(ROOT, page))
    broken = [link for link in links if not os.path.exists(os.path.join(folder, link))]
    assert not broken, f"{page}: links that resolve to nothing: {broken}"
