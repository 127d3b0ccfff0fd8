"""What a reader shows of an HTML feed description: its text, paragraphs apart."""

from __future__ import annotations

from html.parser import HTMLParser


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "p":
            self.paragraphs.append("")

    def handle_data(self, data: str) -> None:
        if not self.paragraphs:
            self.paragraphs.append("")
        self.paragraphs[-1] += data


def html_text(fragment: str) -> tuple[str, list[str]]:
    """(the text, paragraphs joined by a blank line; the tags met)."""
    parser = _Text()
    parser.feed(fragment)
    parser.close()
    return "\n\n".join(p.strip("\n") for p in parser.paragraphs if p.strip()), parser.tags
