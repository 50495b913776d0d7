"""Templates: one subject/text/html triplet per mail kind. The defaults ship inside this package;
an operator's folder overrides them file by file."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path

import jinja2

PARTS = ("subject", "txt", "html")
DEFAULT_TEMPLATES = Path(__file__).resolve().parent / "templates"


def local_time(moment: datetime | None, zone: tzinfo) -> str | None:
    """A moment as people in `zone` read it, to the minute."""
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else None


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class TemplateRenderer:
    def __init__(self, folder: Path | None = None):
        loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(str(folder))] if folder else []
        loaders.append(jinja2.FileSystemLoader(str(DEFAULT_TEMPLATES)))
        loader = jinja2.ChoiceLoader(loaders)
        # Templates are checked when a process starts (check-config, run) and used as checked:
        # an edit takes effect at the next start, not half-way through a burst. (Jinja would
        # otherwise also stat every file of a template each time it renders one.)
        self._plain = jinja2.Environment(autoescape=False, loader=loader, undefined=jinja2.StrictUndefined,
                                         keep_trailing_newline=True, auto_reload=False)
        self._html = jinja2.Environment(autoescape=True, loader=loader, undefined=jinja2.StrictUndefined,
                                        keep_trailing_newline=True, auto_reload=False)

    def render(self, kind: str, context: dict) -> Rendered:
        subject = self._plain.get_template(f"{kind}.subject.j2").render(context)
        text = self._plain.get_template(f"{kind}.txt.j2").render(context)
        html = self._html.get_template(f"{kind}.html.j2").render(context)
        # A subject is one header line whatever a student typed into their name.
        subject = re.sub(r"\s+", " ", subject).strip()
        # Optional blocks that render empty leave runs of blank lines; a reader sees one.
        text = re.sub(r"\n{3,}", "\n\n", text)
        return Rendered(subject, text, html)
