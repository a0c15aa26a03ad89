"""Ops that move, copy, create or compare data but do no floating-point arithmetic, and how they move fields.

Views, copies, padding, allocation, comparisons and bookkeeping are declared here with the reason shown to
users. Any other view (by torch's schema), view copy, comparison or factory is recognised from torch's
metadata (nbcount.rules.classify); these lists name the ones nbcount also moves receptive fields through.
"""

from __future__ import annotations

import torch

from nbcount.rules.fields_layout import cat, copy, expand, fresh, mix_all, permute, select, slice_, split, view
from nbcount.rules.fields_window import pad
from nbcount.rules.registry import field_rule, ignore

aten, prim, profiler = torch.ops.aten, torch.ops.prim, torch.ops.profiler

VIEWS = (aten.view, aten._unsafe_view, aten.reshape, aten._reshape_alias, aten.view_as, aten.flatten,
         aten.unflatten, aten.squeeze, aten.unsqueeze, aten.alias, aten.detach, aten.lift_fresh, aten.view_copy,
         aten.view_as_real, aten.view_as_complex, aten.real, aten.imag, aten.as_strided)
EXPAND = (aten.expand, aten.expand_as, aten.broadcast_to, aten.expand_copy)
PERMUTE = (aten.permute, aten.transpose, aten.t, aten.swapaxes, aten.movedim, aten.permute_copy,
           aten.transpose_copy)
SLICE = (aten.slice, aten.slice_copy)
SELECT = (aten.select, aten.select_copy)
SPLIT = (aten.split, aten.split_with_sizes, aten.unsafe_split, aten.unsafe_split_with_sizes, aten.unbind,
         aten.chunk, aten.tensor_split, aten.split_copy, aten.unbind_copy)
CAT = (aten.cat, aten.concat, aten.concatenate)
COPIES = (aten.clone, aten.contiguous, aten._to_copy, aten.to, aten.lift_fresh_copy)
PADS = (aten.constant_pad_nd, aten.reflection_pad1d, aten.reflection_pad2d, aten.reflection_pad3d,
        aten.replication_pad1d, aten.replication_pad2d, aten.replication_pad3d, aten._pad_circular)
FILLS = (aten.empty_like, aten.zeros_like, aten.ones_like, aten.full_like, aten.rand_like, aten.randn_like,
         aten.randint_like, aten.new_empty, aten.new_empty_strided, aten.new_zeros, aten.new_ones, aten.new_full,
         aten.fill, aten.zero_, aten.normal_, aten.uniform_, aten.sym_size, aten.sym_stride, aten.sym_numel,
         aten.size, prim.device)
SELECTION = (aten.index, aten.index_select, aten.gather, aten.masked_select, aten._unsafe_index,
             aten.take, aten.nonzero, aten.where, aten.masked_fill, aten.masked_scatter, aten.tril, aten.triu,
             aten.im2col, aten.slice_scatter, aten.select_scatter, aten._unique2, aten.unique_dim,
             aten.unique_consecutive)

ignore("a view or shape change: no arithmetic", *VIEWS, *EXPAND, *PERMUTE, *SLICE, *SELECT, *SPLIT,
       aten.diagonal, aten.unfold)
ignore("copies or rearranges data: no arithmetic", *COPIES, aten.copy, *CAT, aten.stack, *PADS, aten.roll, aten.flip,
       aten.repeat, aten.repeat_interleave, aten.pixel_shuffle, aten.pixel_unshuffle, aten.channel_shuffle,
       aten.complex)
ignore("selects, gathers or overwrites elements: no arithmetic", *SELECTION)
ignore("allocates or fills a tensor: no arithmetic",
       aten.empty, aten.empty_strided, aten.zeros, aten.ones, aten.full, aten.arange, aten.linspace,
       aten.scalar_tensor, aten.eye, aten.rand, aten.randn, aten.randint, aten.randperm, aten.bernoulli,
       aten.resize_, aten.set_, aten.tensor, *FILLS)
ignore("comparisons, selection or bookkeeping: no floating-point arithmetic",
       aten.eq, aten.ne, aten.lt, aten.le, aten.gt, aten.ge, aten.logical_and, aten.logical_or, aten.logical_not,
       aten.logical_xor, aten.bitwise_and, aten.bitwise_or, aten.bitwise_not, aten.bitwise_xor, aten.argmax,
       aten.argmin, aten.max, aten.min, aten.sort, aten.topk, aten.argsort, aten.isnan, aten.isinf, aten.isfinite,
       aten._local_scalar_dense, aten.is_same_size, aten.equal, aten.allclose, aten.is_nonzero, aten._assert_async,
       aten._assert_tensor_metadata, aten._has_compatible_shallow_copy_type, aten.record_stream, aten.item,
       aten.bucketize, aten.searchsorted, aten.one_hot, aten.sym_storage_offset, aten._functional_assert_async,
       aten.isin, aten._is_all_true, aten._is_any_true, aten.median, aten.nanmedian, aten.mode, aten.kthvalue)
ignore("gradient of a view or selection: copies ∂y into zeros, no arithmetic",
       aten.select_backward, aten.diagonal_backward, aten.slice_backward)
ignore("profiler bookkeeping (record_function ranges, e.g. from DataParallel): no arithmetic",
       profiler._record_function_enter, profiler._record_function_enter_new, profiler._record_function_exit)

field_rule(*VIEWS, *COPIES)(view)
field_rule(*EXPAND)(expand)
field_rule(*PERMUTE)(permute)
field_rule(*SLICE)(slice_)
field_rule(*SELECT)(select)
field_rule(*SPLIT)(split)
field_rule(*CAT)(cat)
field_rule(*PADS)(pad)
field_rule(*FILLS)(fresh)
field_rule(aten.copy_, aten.copy)(copy)
field_rule(aten.index_put, aten.nonzero, aten.masked_select, aten._unique2, aten.im2col, aten.fft_fftn,
           aten._fft_r2c, aten._fft_c2r, aten._fft_c2c)(mix_all)
