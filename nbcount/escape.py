"""The one escaping module: user text (layer names, class names, messages) made inert for each output format.

Every view writes names through these functions and nothing else, so a layer called
``<img src=x onerror=alert(1)>`` or ``$\\input{x}$`` is shown as text in HTML, Markdown, LaTeX, CSV and
matplotlib, never run or typeset.
"""

from __future__ import annotations

import html as _html
import re

#: HTML classes that keep MathJax (classic Notebook, nbconvert, JupyterLab) away from plain text.
NO_MATH = "tex2jax_ignore mathjax_ignore"

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-!|<>$~&])")
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
                  "%": r"\%", "_": r"\_", "^": r"\^{}", "~": r"\~{}", "<": r"\textless{}", ">": r"\textgreater{}"}


def html(text: object) -> str:
    """Text as HTML character data or a quoted attribute value (``< > & " '`` escaped)."""
    return _html.escape(str(text), quote=True)


def markdown(text: object) -> str:
    """Text inside Markdown (a table cell, a bullet): every Markdown, HTML and math character backslashed."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text).replace("\n", " "))


def latex(text: object) -> str:
    """Text in LaTeX text mode (a tabular cell, ``\\text{...}``): the ten special characters and ``< >``."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def mathtext(text: object) -> str:
    """Text for a matplotlib label: ``$`` escaped so a name is never read as mathtext."""
    return str(text).replace("$", r"\$")


def table_cell(text: object) -> str:
    """Our own Markdown (backticks, bold) inside a Markdown table cell: only ``|`` and line breaks neutralised."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def csv_cell(text: object) -> str:
    """One CSV field (RFC 4180): quoted when it holds a comma, quote or line break."""
    value = str(text)
    if any(ch in value for ch in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value
