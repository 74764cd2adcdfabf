"""The front page and docs/: short README with the two commands, and no dead relative link or anchor."""

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def prose_lines(path: Path):
    """(line number, line) outside fenced code blocks, with inline code removed."""
    fenced = False
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            yield number, re.sub(r"`[^`]*`", "", line)


def heading_slugs(path: Path) -> set[str]:
    """GitHub's anchors: lower case, punctuation dropped, spaces to dashes, -1, -2 ... for repeats."""
    slugs, seen = set(), {}
    for _, line in prose_lines(path):
        match = re.match(r"^#{1,6}\s+(.*?)\s*$", line)
        if match:
            text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", match.group(1)).lower()
            slug = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LNM").replace(" ", "-")
            slugs.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
            seen[slug] = seen.get(slug, 0) + 1
    return slugs


def test_readme_is_a_front_page_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 350
    assert "bash scripts/demo.sh" in text and "bash scripts/test.sh" in text


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_and_anchor_exists(page):
    broken = []
    for number, line in prose_lines(page):
        for target in LINK.findall(line):
            if re.match(r"^[a-z]+:", target):
                continue  # web links are not checked offline
            file_part, _, anchor = target.partition("#")
            destination = (page.parent / file_part).resolve() if file_part else page
            if not destination.exists():
                broken.append(f"{page.name}:{number} {target}: no such file")
            elif anchor and anchor not in heading_slugs(destination):
                broken.append(f"{page.name}:{number} {target}: no such heading")
    assert not broken, "\n".join(broken)
