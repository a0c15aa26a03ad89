"""Frozen data shared by every layer of nbcount; imports nothing else from nbcount."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

Shape = tuple[int, ...]


class Term(str, Enum):
    """A category of arithmetic in a cost breakdown; conventions weigh them differently."""

    MAC = "mac"  # multiply-accumulate of conv / linear / matmul / attention
    BIAS = "bias"  # bias additions after a conv / linear / matmul
    NORM = "norm"  # normalisation arithmetic (BatchNorm, LayerNorm, ...)
    ACTIVATION = "activation"  # ReLU, GELU, SiLU, Sigmoid, Tanh, ...
    POOL = "pool"  # pooling comparisons / additions
    SOFTMAX = "softmax"  # softmax / log-softmax arithmetic
    ELEMENTWISE = "elementwise"  # other pointwise arithmetic (add, mul, exp, ...)
    REDUCTION = "reduction"  # sum / mean / var / norm reductions
    INTERPOLATE = "interpolate"  # upsampling interpolation weights


class Part(str, Enum):
    """Which gradient a backward step computes: towards the layer's input, or of its parameters."""

    INPUT = "input"  # ∂x
    WEIGHT = "weight"  # ∂W, ∂b, ∂γ, ∂β


@dataclass(frozen=True)
class TensorMeta:
    """What capture keeps of a tensor: shape, dtype, bytes per element and a stable identity."""

    shape: Shape
    dtype: str
    itemsize: int
    tid: int

    @property
    def numel(self) -> int:
        """Number of elements."""
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        """Bytes of the elements (not of the storage)."""
        return self.numel * self.itemsize

    @property
    def is_floating(self) -> bool:
        """A real floating-point dtype: float16/32/64, float8_*, bfloat16."""
        return self.dtype.startswith(("float", "bfloat"))


@dataclass(frozen=True)
class OpEvent:
    """One aten op as seen by the dispatch mode; tensors in args/kwargs are TensorMeta."""

    op: str  # overload packet, e.g. "aten.convolution"
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]
    outputs: tuple[TensorMeta, ...]
    is_view: bool = False
    seq: int = -1  # position in the forward pass's global op order (dataflow: receptive field)

    def kwarg(self, name: str, default: Any = None) -> Any:
        """The keyword argument `name`, or `default`."""
        for key, value in self.kwargs:
            if key == name:
                return value
        return default

    def arg(self, index: int, name: str, default: Any = None) -> Any:
        """Positional argument `index`, else keyword `name`, else `default`."""
        if index < len(self.args):
            return self.args[index]
        return self.kwarg(name, default)


@dataclass(frozen=True)
class ParamRef:
    """A parameter as the table attributes it: its dotted name and shape."""

    name: str
    shape: Shape
    numel: int
    nbytes: int
    trainable: bool


@dataclass(frozen=True)
class BufferRef:
    """A buffer (running statistics, a mask, a step counter) as the table attributes it."""

    name: str
    shape: Shape
    dtype: str
    numel: int
    nbytes: int
    persistent: bool = True  # saved in the state_dict (register_buffer(..., persistent=False): not)


@dataclass(frozen=True)
class LayerCall:
    """One module call: one row of the table; identity is `path` + `call_index`."""

    path: str
    call_index: int
    module_type: str
    classes: tuple[str, ...]  # qualified class names of type(module).__mro__, for rule lookup
    depth: int
    parent: int | None  # index of the enclosing call in Trace.calls
    in_tensors: tuple[TensorMeta, ...]
    out_tensors: tuple[TensorMeta, ...]
    params_new: tuple[ParamRef, ...]
    params_shared: tuple[ParamRef, ...]
    buffer_bytes: int
    attrs: tuple[tuple[str, Any], ...]
    ops: tuple[OpEvent, ...]
    is_leaf: bool
    op_span: tuple[int, int] = (0, 0)  # global op positions [at enter, at leave) of this call
    buffers_new: tuple[BufferRef, ...] = ()  # buffers first seen at this call (buffer_bytes is their sum)
    forward_owner: str = ""  # qualified name of the class whose forward ran (a subclass may override it)

    def attr(self, name: str, default: Any = None) -> Any:
        """A hyper-parameter of the module (kernel_size, stride, ...), or `default`."""
        for key, value in self.attrs:
            if key == name:
                return value
        return default


@dataclass(frozen=True)
class Trace:
    """Everything capture saw; nothing computed."""

    calls: tuple[LayerCall, ...]
    registered_params: tuple[ParamRef, ...]
    unused_modules: tuple[str, ...]
    input_tensors: tuple[TensorMeta, ...]
    output_tensors: tuple[TensorMeta, ...]
    peak_activation_bytes: int
    execution: str  # "meta", "fake" or "real": how the forward pass ran
    notes: tuple[str, ...] = ()
    registered_buffers: tuple[BufferRef, ...] = ()  # every buffer of the model, each tensor once


@dataclass(frozen=True)
class Diagnostic:
    """A finding the user should read: shared or unused parameters, uncounted ops, fallbacks."""

    kind: str  # "uncounted_op" | "shared_params" | "unused_module" | "note" | "peer_defect"
    message: str
    layers: tuple[str, ...] = ()
    count: int = 0
    extra: tuple[tuple[str, Any], ...] = field(default=())
