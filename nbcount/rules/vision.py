"""torchvision's detection ops (nms, roi_align, deform_conv2d), registered when torchvision is importable.

Schemas (torchvision/csrc/ops): ``nms(dets, scores, iou_threshold)``, ``roi_align(input, rois, spatial_scale,
pooled_height, pooled_width, sampling_ratio, aligned)``, ``deform_conv2d(input, weight, offset, mask, bias,
stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups, offset_groups, use_mask)``.
"""

from __future__ import annotations

import importlib.util

from nbcount.derive import step
from nbcount.rules.fields_layout import mix_all
from nbcount.rules.registry import Cost, field_rule, op_rule
from nbcount.rules.table import exists
from nbcount.types import OpEvent, Term

BILINEAR_SAMPLE = 7  # 4 weighted corners: 4 multiplies + 3 adds
IOU = 12  # 4 min/max, 2·(subtract, clamp) for the overlap sides, 1 multiply, area sum − overlap (2), divide (1)


def nms(op: OpEvent) -> Cost:
    """At most one IoU per pair of boxes, 12 ops each: 12·N·(N − 1)/2, plus N areas (3 ops) (no box suppressed)."""
    n = op.args[0].shape[0]
    return (step("box areas", "3*N", term=Term.ELEMENTWISE, N=n),
            step("IoU ops (at most)", "12*N*(N - 1)/2", term=Term.ELEMENTWISE, N=n,
                 note="worst case: a suppressed box is skipped, so the kernel may do fewer"))


def roi_align(op: OpEvent) -> Cost:
    """K boxes × C × PH × PW outputs, each the mean of s² bilinear samples (7 ops each): K·C·PH·PW·(7·s² + 1)."""
    x, rois = op.args[0], op.args[1]
    ph, pw, s = int(op.args[3]), int(op.args[4]), int(op.args[5])
    if s <= 0:
        raise NotImplementedError("sampling_ratio <= 0 picks each box's sample grid from its size (data-dependent)")
    return (step("bilinear samples", "K*C*PH*PW*(7*s*s + 1)", term=Term.INTERPOLATE, K=rois.shape[0],
                 C=x.shape[1], PH=ph, PW=pw, s=s, note="s² samples of 7 ops each, then one divide per output"),)


def deform_conv2d(op: OpEvent) -> Cost:
    """Conv MACs N·C_out·H_out·W_out·(C_in/g·K_h·K_w), + 7 ops per bilinear sample of the N·C_in·K_h·K_w·H_out·W_out
    sampled inputs (+ 1 multiply each with a modulation mask) + N·C_out·H_out·W_out bias adds."""
    x, w, out = op.args[0], op.args[1], op.outputs[0]
    groups, use_mask = int(op.args[11]), bool(op.args[13])
    n, c_in, c_out = x.shape[0], x.shape[1], w.shape[0]
    k_h, k_w, h_out, w_out = w.shape[2], w.shape[3], out.shape[2], out.shape[3]
    per_sample = "8" if use_mask else "7"
    return (step("MACs", "N*C_out*H_out*W_out*(C_in/g*K_h*K_w)", term=Term.MAC, N=n, C_out=c_out, H_out=h_out,
                 W_out=w_out, C_in=c_in, g=groups, K_h=k_h, K_w=k_w),
            step("bilinear sampling", f"{per_sample}*N*C_in*K_h*K_w*H_out*W_out", term=Term.INTERPOLATE, N=n,
                 C_in=c_in, K_h=k_h, K_w=k_w, H_out=h_out, W_out=w_out),
            step("bias adds", "N*C_out*H_out*W_out", term=Term.BIAS, N=n, C_out=c_out, H_out=h_out, W_out=w_out))


RULES = {"torchvision.nms": nms, "torchvision.roi_align": roi_align, "torchvision.deform_conv2d": deform_conv2d}


def _register() -> None:
    if not exists("torchvision.nms") and importlib.util.find_spec("torchvision") is not None:
        try:
            import torchvision  # noqa: F401  (loads its ops into torch.ops.torchvision)
        except Exception:  # an installed torchvision built for another torch: its ops stay unknown (uncounted)
            return
    for name, rule in RULES.items():
        if exists(name):
            op_rule(name)(rule)
            field_rule(name)(mix_all)


_register()
