"""Self-contained HTML reports (pictures embedded), written atomically."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from surgplan.atomic import write_text_atomic
from surgplan.manifest import utc_now


@dataclass
class Table:
    """A table: column titles and rows of cells (str/number, or ``{"text", "cls"}``)."""

    columns: list[str]
    rows: list[list[Any]]


@dataclass
class Section:
    """One heading of a report with optional text, table and PNG pictures."""

    heading: str
    text: str = ""
    table: Table | None = None
    images: list[dict[str, str]] = field(default_factory=list)

    def add_image(self, png: str | os.PathLike[str], caption: str) -> None:
        """Embed the PNG at ``png`` (base64) with ``caption``.

        Parameters
        ----------
        png
            The picture file.
        caption
            Text shown under it.
        """
        data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
        self.images.append({"data": data, "caption": caption})


def verdict_cell(value: float, threshold: float, fmt: str = "{:.3f}") -> dict[str, str]:
    """Table cell showing ``value`` marked pass (>= threshold) or fail.

    Parameters
    ----------
    value
        The measured figure (in the units of the table column).
    threshold
        The smallest passing value, same units.
    fmt
        Format of ``value`` in the cell.
    """
    ok = value >= threshold
    return {
        "text": f"{fmt.format(value)} ({'>=' if ok else '<'} {threshold})",
        "cls": "pass" if ok else "fail",
    }


def write_report(path: str | os.PathLike[str], title: str, sections: list[Section]) -> Path:
    """Render the report to ``path`` (HTML, UTF-8, atomically).

    Parameters
    ----------
    path
        Destination ``.html``.
    title
        Report title (never a patient identifier).
    sections
        Report content in order.

    Returns
    -------
    Path
        The written file.
    """
    environment = Environment(
        loader=PackageLoader("surgplan", "templates"), autoescape=select_autoescape(["html"])
    )
    html = environment.get_template("report.html").render(
        title=title, sections=sections, generated=utc_now(), version=version("surgplan")
    )
    out = Path(path)
    write_text_atomic(out, html)
    return out
