"""Pointwise arithmetic, activations, softmax, reductions, and the ops that do no arithmetic.

One floating-point operation per output element for every pointwise op (a transcendental
function such as exp or tanh counts as one, as in most FLOP counters); fused ops such as
addcmul count each arithmetic step. A reduction costs one operation per input element.
"""

from __future__ import annotations

from nbcount.derive import step
from nbcount.rules import Cost, OpRule, ignore, op_rule
from nbcount.types import OpEvent, Term


def _pointwise(label: str, term: Term, per_element: int) -> OpRule:
    def rule(op: OpEvent) -> Cost:
        out = op.outputs[0]
        if per_element == 1:
            return (step(label, "n_out", term=term.value, n_out=out.numel),)
        return (step(label, f"{per_element}*n_out", term=term.value, n_out=out.numel),)

    rule.__doc__ = f"{label} = {per_element}·n_out (one {term.value} op per output element)"
    return rule


def _both(*names: str) -> tuple[str, ...]:
    """An op and its in-place variant (``aten.add`` and ``aten.add_``)."""
    return tuple(n for name in names for n in (name, name + "_"))


ARITHMETIC = _both("aten.add", "aten.sub", "aten.mul", "aten.div", "aten.rsub", "aten.neg", "aten.pow",
                   "aten.sqrt", "aten.rsqrt", "aten.exp", "aten.exp2", "aten.log", "aten.log2", "aten.log10",
                   "aten.log1p", "aten.expm1", "aten.abs", "aten.reciprocal", "aten.sin", "aten.cos", "aten.tan",
                   "aten.erf", "aten.erfc", "aten.erfinv", "aten.square", "aten.maximum", "aten.minimum",
                   "aten.fmod", "aten.remainder", "aten.clamp", "aten.clamp_min", "aten.clamp_max",
                   "aten.floor", "aten.ceil", "aten.round", "aten.trunc", "aten.sign", "aten.atan", "aten.atan2",
                   "aten.asin", "aten.acos", "aten.sinh", "aten.cosh", "aten.xlogy", "aten.hypot",
                   "aten.floor_divide", "aten.frac")
ARITHMETIC_2 = _both("aten.addcmul", "aten.addcdiv", "aten.lerp")
ACTIVATIONS = _both("aten.relu", "aten.relu6", "aten.leaky_relu", "aten.elu", "aten.celu", "aten.selu",
                    "aten.gelu", "aten.silu", "aten.sigmoid", "aten.tanh", "aten.hardtanh", "aten.hardswish",
                    "aten.hardsigmoid", "aten.mish", "aten.softplus", "aten.softshrink", "aten.hardshrink",
                    "aten.threshold", "aten.rrelu_with_noise", "aten.logsigmoid", "aten._prelu_kernel",
                    "aten.prelu", "aten.glu", "aten.log_sigmoid_forward")

for _name in ARITHMETIC:
    op_rule(_name)(_pointwise("elementwise ops", Term.ELEMENTWISE, 1))
for _name in ARITHMETIC_2:
    op_rule(_name)(_pointwise("elementwise ops", Term.ELEMENTWISE, 2))
for _name in ACTIVATIONS:
    op_rule(_name)(_pointwise("activation ops", Term.ACTIVATION, 1))


@op_rule("aten.native_dropout", "aten.dropout", "aten.bernoulli_", "aten.feature_dropout")
def dropout(op: OpEvent) -> Cost:
    """Training-mode dropout: one multiply per element by the scaled keep-mask."""
    return (step("dropout scale", "n_out", term=Term.ELEMENTWISE.value, n_out=op.outputs[0].numel),)


@op_rule("aten._softmax", "aten._log_softmax", "aten._safe_softmax", "aten.softmax", "aten.log_softmax")
def softmax(op: OpEvent) -> Cost:
    """Stable softmax: max, subtract, exp, sum, divide = 5 ops per element."""
    return (step("softmax ops", "5*n", term=Term.SOFTMAX.value, n=op.outputs[0].numel),)


@op_rule("aten.sum", "aten.mean", "aten.prod", "aten.amax", "aten.amin", "aten.logsumexp", "aten.cumsum",
         "aten.cumprod", "aten.nansum", "aten.linalg_vector_norm", "aten.norm", "aten.any", "aten.all")
def reduction(op: OpEvent) -> Cost:
    """A reduction: one operation per input element."""
    return (step("reduction ops", "n_in", term=Term.REDUCTION.value, n_in=op.args[0].numel),)


@op_rule("aten.var", "aten.std", "aten.var_mean", "aten.std_mean")
def variance(op: OpEvent) -> Cost:
    """Variance: mean (1), subtract (1), square-accumulate (1) = 3 ops per input element."""
    return (step("reduction ops", "3*n_in", term=Term.REDUCTION.value, n_in=op.args[0].numel),)


ignore("a view or shape change: no arithmetic",
       "aten.view", "aten._unsafe_view", "aten.reshape", "aten._reshape_alias", "aten.t", "aten.t_",
       "aten.transpose", "aten.transpose_", "aten.permute", "aten.expand", "aten.expand_as", "aten.squeeze",
       "aten.squeeze_", "aten.unsqueeze", "aten.unsqueeze_", "aten.select", "aten.slice", "aten.unbind",
       "aten.split", "aten.split_with_sizes", "aten.unsafe_split", "aten.unsafe_split_with_sizes", "aten.chunk",
       "aten.narrow", "aten.as_strided", "aten.alias", "aten.detach", "aten.detach_", "aten.flatten",
       "aten.unflatten", "aten.view_as_real", "aten.view_as_complex", "aten.movedim", "aten.diagonal",
       "aten.unfold", "aten.lift_fresh", "aten.real", "aten.imag", "aten.tensor_split")
ignore("copies or rearranges data: no arithmetic",
       "aten.clone", "aten.contiguous", "aten.copy_", "aten._to_copy", "aten.to", "aten.cat", "aten.stack",
       "aten.constant_pad_nd", "aten.reflection_pad1d", "aten.reflection_pad2d", "aten.reflection_pad3d",
       "aten.replication_pad1d", "aten.replication_pad2d", "aten.replication_pad3d", "aten.roll", "aten.flip",
       "aten.repeat", "aten.repeat_interleave", "aten.index", "aten.index_select", "aten.gather",
       "aten.scatter", "aten.scatter_", "aten.index_put", "aten.index_put_", "aten.masked_select",
       "aten.pixel_shuffle", "aten.pixel_unshuffle", "aten.channel_shuffle", "aten.lift_fresh_copy",
       "aten.embedding", "aten._embedding_bag", "aten.tril", "aten.triu", "aten.tril_", "aten.triu_",
       "aten.where", "aten.masked_fill", "aten.masked_fill_", "aten.fill", "aten.fill_", "aten.zero_",
       "aten.im2col", "aten.col2im", "aten.slice_scatter", "aten.select_scatter", "aten._unsafe_index",
       "aten.take", "aten.nonzero", "aten.polar", "aten.complex")
ignore("allocates or fills a tensor: no arithmetic",
       "aten.empty", "aten.empty_like", "aten.empty_strided", "aten.zeros", "aten.zeros_like", "aten.ones",
       "aten.ones_like", "aten.full", "aten.full_like", "aten.arange", "aten.linspace", "aten.scalar_tensor",
       "aten.new_empty", "aten.new_empty_strided", "aten.new_zeros", "aten.new_ones", "aten.new_full",
       "aten.eye", "aten.rand", "aten.randn", "aten.randint", "aten.rand_like", "aten.randn_like",
       "aten.randint_like", "aten.randperm", "aten.normal_", "aten.uniform_", "aten.bernoulli",
       "aten.resize_", "aten.set_", "aten.tensor")
ignore("comparisons, selection or bookkeeping: no floating-point arithmetic",
       "aten.eq", "aten.ne", "aten.lt", "aten.le", "aten.gt", "aten.ge", "aten.logical_and", "aten.logical_or",
       "aten.logical_not", "aten.logical_xor", "aten.bitwise_and", "aten.bitwise_or", "aten.bitwise_not",
       "aten.bitwise_xor", "aten.argmax", "aten.argmin", "aten.max", "aten.min", "aten.sort", "aten.topk",
       "aten.argsort", "aten.isnan", "aten.isinf", "aten.isfinite", "aten._local_scalar_dense",
       "aten.is_same_size", "aten.sym_size", "aten.sym_stride", "aten.sym_numel", "aten.equal",
       "aten.allclose", "aten.is_nonzero", "aten._assert_async", "aten._assert_tensor_metadata",
       "aten._has_compatible_shallow_copy_type", "aten.record_stream", "aten.item", "aten.bucketize",
       "aten.searchsorted", "aten.one_hot", "aten.unique", "aten._unique2", "aten.unique_consecutive",
       "prim.device", "prim.layout", "aten.sym_storage_offset", "aten._functional_assert_async",
       "aten.slice_backward", "aten.isin")
ignore("profiler bookkeeping (record_function ranges, e.g. from DataParallel): no arithmetic",
       "profiler._record_function_enter", "profiler._record_function_enter_new", "profiler._record_function_exit")
