"""What the magics say: ``%netcount?`` (examples, options, ``%config NetCount`` settings) and failures
rewritten for a magic user — short, pointing at the notebook cell and line, and naming magic options
(``--dtype long``) instead of the Python call (``dtype=torch.long``).
"""

from __future__ import annotations

import re
from typing import Any

EXAMPLES = """\
Count a PyTorch model's parameters, MACs, FLOPs, output shapes and memory, and show them as a widget
(Summary, Layers, Charts, Derivation, Conventions, Diagnostics). Nothing in your model changes.

Examples:

  %%netcount -i 1,3,32,32 -o r          # count the model this cell builds; keep the Report as r
  model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10))

  %netcount model -i 1,3,224,224                     # a model you already have
  %netcount model -i 1,3,224,224 --derive conv1      # open conv1's worked derivation (conv1#1: its 2nd call)
  %netcount gpt -i 1,128 --dtype long                # token ids for an embedding
  %netcount model -i 1,3,224,224 -c fvcore --compare thop,torchinfo
  %netcount unet -i 1,3,256,256 --depth 1 -q -o r    # count quietly, keep the Report
  %%netcount --device meta -i 1,4096 --dtype long    # build and count a huge model without memory

Trailing # comments are allowed on the magic line.
"""


def help_text(generated: str | None, settings: Any) -> str:
    """The magic's docstring: examples, the argparse usage and options, then the %config settings."""
    body = (generated or "").strip()
    body = re.sub(r"^::\s*\n", "", body)  # magic_arguments starts with a reST literal marker
    lines = [EXAMPLES, "Usage:", "", *("  " + line if line else "" for line in body.splitlines()), "",
             "Settings, set once per session with %config NetCount.<name> = value:", ""]
    for name in sorted(settings.class_trait_names(config=True)):
        trait = settings.class_traits()[name]
        lines.append(f"  NetCount.{name} = {trait.default()!r}")
        lines.append(f"      {trait.help}")
    lines += ["", "Everything is reachable from Python too: nbcount.count(model, (1, 3, 224, 224)) returns the "
              "Report; report.show() displays this widget."]
    return "\n".join(lines)


# failures -------------------------------------------------------------------------------------------
_OPTIONS = (  # a phrase of count()'s messages -> the magic option that does the same
    (re.compile(r"count\(model, \(([\d, ]+)\), dtype=torch\.long\)"),
     lambda m: f"-i {m.group(1).replace(' ', '')} --dtype long"),
    (re.compile(r"pass inputs=(torch\.randint\([^)]*\([^)]*\)\))"), lambda m: f"pass --inputs '{m.group(1)}'"),
    (re.compile(r"dtype=torch\.(\w+)"), lambda m: f"--dtype {m.group(1)}"),
    (re.compile(r"\binputs=(\([^)]*\)|\{[^}]*\}|tensor\b)"), lambda m: f"--inputs '{m.group(1)}'"),
    (re.compile(r"\binput_size=?"), lambda m: "-i"),
)
_PARTIAL = re.compile(r"the partial report is on this exception's \.report attribute.*$")
_RAISED = re.compile(r"raised at (?P<file>.+?):(?P<line>\d+) in (?P<rest>.*)$")


def _cell_name(filename: str, shell: Any) -> str | None:
    """``cell In[3]`` for a file IPython compiled from a notebook cell, else None."""
    number = getattr(getattr(shell, "compile", None), "_filename_map", {}).get(filename)
    return f"cell In[{number}]" if number is not None else None


def count_error(message: str, output: str | None, shell: Any) -> str:
    """A CountError / InputError message as the magic shows it (no traceback, magic options, cell lines)."""
    lines = []
    for line in message.splitlines():
        for pattern, replace in _OPTIONS:
            line = pattern.sub(replace, line)
        kept = (f"the partial report is in {output} ({output}.table)" if output
                else "add -o NAME to keep the partial report (NAME.table)")
        line = _PARTIAL.sub(kept, line)
        found = _RAISED.search(line)
        if found:
            cell = _cell_name(found.group("file"), shell)
            if cell:
                line = line[:found.start()] + f"raised at {cell}, line {found.group('line')} in {found.group('rest')}"
        lines.append(line)
    return "\n".join(lines)
