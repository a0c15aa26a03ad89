"""%netcount / %%netcount: a thin shell over nbcount.count() and nbcount.display."""

from __future__ import annotations

import ast
import copy
import keyword
import re
from collections import deque
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

if TYPE_CHECKING:
    import torch
    from torch import nn

    from nbcount.report import Report
    from nbcount.settings import NetCount

_DTYPE_ALIASES = {"fp32": "float32", "float": "float32", "fp16": "float16", "half": "float16", "bf16": "bfloat16",
                  "fp64": "float64", "double": "float64", "long": "int64", "int": "int32"}


# option parsing -------------------------------------------------------------------------------
def parse_size(text: str) -> tuple[int, ...]:
    """'1,3,224,224', '1x3x224x224' or '(1, 3, 224, 224)' → (1, 3, 224, 224)."""
    body = text.strip().strip("()[]")
    parts = [p for p in re.split(r"[,x\s]+", body) if p]
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        raise UsageError(f"-i/--input-size {text!r}: write the shape as integers, e.g. -i 1,3,224,224") from None
    if not size or any(d < 1 for d in size):
        raise UsageError(f"-i/--input-size {text!r}: every dimension must be a positive integer")
    return size


def parse_dtypes(text: str) -> torch.dtype | list[torch.dtype]:
    """'float16' / 'torch.bfloat16' / 'long' / 'float32,int64' (one per input) → torch dtype(s)."""
    import torch

    found = []
    for token in [t.strip() for t in text.split(",") if t.strip()]:
        name = token.removeprefix("torch.").lower()
        value = getattr(torch, _DTYPE_ALIASES.get(name, name), None)
        if not isinstance(value, torch.dtype):
            raise UsageError(f"--dtype {token!r} is not a torch dtype; try float32, float16, bfloat16 or int64")
        found.append(value)
    if not found:
        raise UsageError("--dtype needs a value, e.g. --dtype float16")
    return found[0] if len(found) == 1 else found


def parse_names(text: str, known: list[str], option: str) -> list[str]:
    """A comma-separated list of names, each checked against `known`."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise UsageError(f"{option}: unknown {', '.join(map(repr, unknown)) or 'empty list'}; "
                         f"choose from {', '.join(known)}")
    return names


def parse_layer(text: str) -> tuple[str, int]:
    """'conv1' → ('conv1', 0); 'conv1#1' → ('conv1', 1): a layer and its call index (nbcount.labels)."""
    from nbcount.labels import parse_layer as parse

    return parse(text)


def strip_comment(line: str) -> str:
    """The magic line without a trailing ``# comment`` (a ``#`` at the start or after a space, outside quotes).

    ``conv#1`` (a layer's second call) is not a comment: its ``#`` follows a name.
    """
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line


def unquote(value: Any) -> Any:
    """Strip one pair of matching outer quotes (magic_arguments keeps them) from strings and lists of them."""
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


# finding the model of a cell ------------------------------------------------------------------
def _stored_names(node: ast.AST) -> list[str]:
    """Names bound by one statement, not looking into nested function or class bodies."""
    names: list[str] = []
    queue = deque([node])
    while queue:
        current = queue.popleft()
        if isinstance(current, ast.Name) and isinstance(current.ctx, ast.Store):
            names.append(current.id)
        for child in ast.iter_child_nodes(current):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                queue.append(child)
    return names


def _is_module(value: Any) -> bool:
    from torch import nn

    return isinstance(value, nn.Module)


def module_names(namespace: dict[str, Any]) -> list[str]:
    """Public names in `namespace` bound to an nn.Module."""
    return [k for k, v in namespace.items() if not k.startswith("_") and _is_module(v)]


def run_cell(shell: Any, cell: str) -> tuple[Any, list[list[str]]]:
    """Run the cell in the user namespace; return its last expression's value and each statement's stored names."""
    tree = ast.parse(shell.transform_cell(cell))
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    assigned = [_stored_names(stmt) for stmt in tree.body]
    exec(compile(tree, "<%%netcount cell>", "exec"), shell.user_ns)  # noqa: S102 - the user's own cell
    value = eval(compile(last, "<%%netcount cell>", "eval"), shell.user_ns) if last is not None else None  # noqa: S307
    return value, assigned


def pick_model(namespace: dict[str, Any], before: dict[str, int], value: Any,
               assigned: list[list[str]]) -> tuple[nn.Module, str]:
    """The cell's last expression if a Module, else the Module assigned last; UsageError if ambiguous/absent."""
    if _is_module(value):
        return value, type(value).__name__
    changed = [k for k in module_names(namespace) if before.get(k) != id(namespace[k])]
    for names in reversed(assigned):
        modules = [n for n in dict.fromkeys(names) if _is_module(namespace.get(n))]
        distinct = {id(namespace[n]) for n in modules}
        if len(distinct) == 1:
            return namespace[modules[0]], modules[0]
        if len(distinct) > 1:
            raise UsageError(f"the cell's last module assignment binds several modules ({', '.join(modules)}); "
                             f"pick one with -m NAME")
    if len(changed) == 1:
        return namespace[changed[0]], changed[0]
    if changed:
        raise UsageError(f"the cell defines several modules ({', '.join(changed)}); pick one with -m NAME")
    known = module_names(namespace)
    raise UsageError("the cell defines no nn.Module (end it with the model, or assign one); "
                     f"nn.Module variables in the namespace: {', '.join(known) or 'none'}")


def on_device(model: nn.Module, device: str) -> nn.Module:
    """`model` if already on `device`, else a copy there (on meta without copying any data)."""
    import torch
    from torch import nn

    from nbcount.inputs import model_device

    target = torch.device(device)
    if model_device(model).type == target.type:
        return model
    memo: dict[int, Any] = {}
    for p in model.parameters():
        memo[id(p)] = nn.Parameter(p.detach().to(target), requires_grad=p.requires_grad)
    for b in model.buffers():
        memo[id(b)] = b.detach().to(target)
    return copy.deepcopy(model, memo)


def _to_device(inputs: Any, device: str) -> Any:
    import torch

    if isinstance(inputs, torch.Tensor):
        return inputs.to(device)
    if isinstance(inputs, dict):
        return {k: _to_device(v, device) for k, v in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(_to_device(v, device) for v in inputs)
    return inputs


def check_inputs(args: Any) -> None:
    """UsageError for contradictory or invalid input, dtype, depth, output and device options."""
    if args.input_size and args.inputs:
        raise UsageError("give either -i/--input-size or --inputs, not both")
    if not args.input_size and not args.inputs:
        raise UsageError("say what to feed the model: -i 1,3,224,224 (repeatable) or --inputs EXPR")
    if args.inputs and args.dtype:
        raise UsageError("--dtype applies to inputs made from -i sizes; --inputs tensors keep their own dtype")
    if args.depth is not None and args.depth < 0:
        raise UsageError("--depth must be 0 or more")
    if args.output and (not args.output.isidentifier() or keyword.iskeyword(args.output)):
        raise UsageError(f"-o {args.output!r} is not a valid Python variable name")
    if args.device:
        import torch

        try:
            torch.device(args.device)
        except (RuntimeError, ValueError) as error:
            raise UsageError(f"--device {args.device!r}: {error}") from None


@magics_class
class NetCountMagics(Magics):
    """%netcount MODEL [options] counts a variable; %%netcount [options] counts the model the cell defines."""

    def __init__(self, shell: Any, settings: NetCount) -> None:
        super().__init__(shell)
        self.settings = settings

    @property
    def ip(self) -> Any:
        """The shell the magics run in."""
        if self.shell is None:
            raise UsageError("%netcount needs an IPython shell")
        return self.shell

    @magic_arguments()
    @argument("model", nargs="?", help="Line mode: the variable (or expression) holding the nn.Module. "
              "Cell mode: same as -m.")
    @argument("-m", "--model", dest="name", metavar="NAME",
              help="Cell mode: the variable the cell assigns the model to (default: the last expression if it is "
                   "a module, else the module assigned last).")
    @argument("-i", "--input-size", action="append", metavar="SHAPE",
              help="Input shape such as 1,3,224,224; repeat for several inputs.")
    @argument("--inputs", metavar="EXPR", help="Inputs evaluated in the user namespace: a tensor, tuple or dict.")
    @argument("--dtype", help="dtype of the inputs made from -i (float16, bfloat16, int64 ...; comma-separated "
                              "for several inputs).")
    @argument("-c", "--convention", help="Convention of the headline FLOPs number (nbcount.conventions()).")
    @argument("--derive", nargs="?", const="", metavar="LAYER",
              help="Show the worked derivation of LAYER (LAYER#CALL for a repeated call; no value: the totals).")
    @argument("--depth", type=int, help="Levels of the layer tree shown expanded (collapsed rows keep their "
                                        "subtotals).")
    @argument("--columns", help="Comma-separated columns of the static table and text (report.table names).")
    @argument("--device", help="Count on this device; 'meta' builds/counts the model without memory.")
    @argument("--compare", nargs="?", const="all", metavar="CONVENTIONS",
              help="Conventions for the Conventions tab (comma-separated; no value: all).")
    @argument("-o", "--output", metavar="NAME", help="Store the Report in the user namespace as NAME (the partial "
                                                     "report when counting fails).")
    @argument("-q", "--quiet", action="store_true", help="Count without displaying anything.")
    @argument("--static", action="store_true", help="Show the static table and chart instead of the widget.")
    @line_cell_magic
    def netcount(self, line: str, cell: str | None = None) -> None:
        """%netcount MODEL [options] / %%netcount [options]: count a model and show the report."""
        args = parse_argstring(self.netcount, strip_comment(line))
        for key, value in vars(args).items():
            setattr(args, key, unquote(value))
        count_kwargs, options = self._check_options(args)
        if cell is None:
            if args.name:
                raise UsageError("-m NAME is for %%netcount cells; in line mode write %netcount NAME")
            model, name = self._model_from_line(args.model)
        else:
            model, name = self._model_from_cell(cell, args.name or args.model, args.device)
        if args.device:
            model = on_device(model, args.device)
        report = self._count(model, args, count_kwargs, name)
        self._finish(report, args, options)

    # steps --------------------------------------------------------------------------------------
    def _check_options(self, args: Any) -> tuple[dict[str, Any], Any]:
        from nbcount.convention import conventions

        check_inputs(args)
        known = list(conventions())
        convention = args.convention or self.settings.convention
        parse_names(convention, known, "-c/--convention")
        dtype = parse_dtypes(args.dtype or self.settings.dtype)
        return {"convention": convention, "dtype": dtype}, self._view_options(args, known)

    def _view_options(self, args: Any, known: list[str]) -> Any:
        from nbcount.display import ViewOptions
        from nbcount.frame import COLUMNS

        columns = args.columns.split(",") if args.columns else list(self.settings.columns)
        columns = parse_names(",".join(columns), list(COLUMNS), "--columns") if columns else None
        compare = None
        if args.compare == "all":
            compare = tuple(known)
        elif args.compare is not None:
            compare = tuple(parse_names(args.compare, known, "--compare"))
        depth = args.depth if args.depth is not None else (None if self.settings.depth < 0 else self.settings.depth)
        derive = parse_layer(args.derive) if args.derive else ((None, 0) if args.derive == "" else None)
        return ViewOptions(depth=depth, columns=tuple(columns) if columns else None, units=self.settings.units,
                           top=max(1, self.settings.top), log=self.settings.log_scale, derive=derive,
                           compare=compare)

    def _model_from_line(self, expr: str | None) -> tuple[nn.Module, str]:
        namespace = self.ip.user_ns
        if not expr:
            raise UsageError("name the model: %netcount MODEL -i 1,3,224,224 (nn.Module variables: "
                             f"{', '.join(module_names(namespace)) or 'none'})")
        if expr in namespace:
            value = namespace[expr]
        else:
            try:
                value = self.ip.ev(expr)
            except Exception as error:
                raise UsageError(f"{expr!r} is not defined ({type(error).__name__}: {error}); nn.Module variables: "
                                 f"{', '.join(module_names(namespace)) or 'none'}") from None
        if not _is_module(value):
            raise UsageError(f"{expr!r} is a {type(value).__name__}, not a torch.nn.Module; nn.Module variables: "
                             f"{', '.join(module_names(namespace)) or 'none'}")
        return value, expr

    def _model_from_cell(self, cell: str, name: str | None, device: str | None) -> tuple[nn.Module, str]:
        namespace = self.ip.user_ns
        before = {k: id(v) for k, v in namespace.items()}
        context: Any = nullcontext()
        if device:
            import torch

            context = torch.device(device)
        with context:
            value, assigned = run_cell(self.ip, cell)
        if name:
            if not _is_module(namespace.get(name)):
                what = "is not defined" if name not in namespace else f"is a {type(namespace[name]).__name__}"
                raise UsageError(f"-m {name}: {name!r} {what}, not an nn.Module; nn.Module variables: "
                                 f"{', '.join(module_names(namespace)) or 'none'}")
            return namespace[name], name
        return pick_model(namespace, before, value, assigned)

    def _count(self, model: nn.Module, args: Any, kwargs: dict[str, Any], name: str) -> Report:
        from nbcount.counting import CountError, count
        from nbcount.inputs import InputError
        from nbcount.magic_text import count_error
        from nbcount.progress import progress

        if args.inputs:
            try:
                inputs = self.ip.ev(args.inputs)
            except Exception as error:
                raise UsageError(f"--inputs {args.inputs!r} failed: {type(error).__name__}: {error}") from None
            if args.device:
                inputs = _to_device(inputs, args.device)
            source: dict[str, Any] = {"inputs": inputs}
        else:
            sizes = [parse_size(s) for s in args.input_size]
            source = {"input_size": sizes[0] if len(sizes) == 1 else sizes}
        try:
            with progress(f"counting {name}"):
                return count(model, convention=kwargs["convention"], **source,
                             **({} if args.inputs else {"dtype": kwargs["dtype"]}))
        except CountError as error:
            if args.output and error.report is not None:
                self.ip.user_ns[args.output] = error.report
            raise UsageError(count_error(str(error), args.output, self.ip)) from None
        except (InputError, TypeError) as error:
            raise UsageError(count_error(str(error), None, self.ip)) from None

    def _finish(self, report: Report, args: Any, options: Any) -> None:
        from nbcount import display

        if options.derive is not None:
            layer, call = options.derive
            if layer is not None:
                try:
                    report.row(layer, call)
                except KeyError:
                    names = ", ".join(dict.fromkeys(r.layer or r.call.module_type for r in report.rows))
                    raise UsageError(f"--derive {args.derive!r}: no such layer call; layers: {names}") from None
        if args.output:
            self.ip.user_ns[args.output] = report
        if args.quiet:
            return
        display.show(report, options, static=args.static or not self.settings.widget)
        if options.derive is not None:
            from IPython.display import display as show_object

            for item in display.derivations(report, *options.derive):
                show_object(item)


def _document() -> None:
    """Give %netcount? its examples and the %config NetCount settings (and drop magic_arguments' '::')."""
    from nbcount.magic_text import help_text
    from nbcount.settings import NetCount

    function = NetCountMagics.netcount
    function.__doc__ = help_text(function.__doc__, NetCount)


_document()
