"""Backend ``"numpy"``: the readable reference, straight from the definition.

It is the scatter form of spec section 2: input pixel ``(iy, ix)`` times the
filter tap ``(ky, kx)`` lands on output pixel
``(iy*stride + ky*dilation - pad_top, ix*stride + kx*dilation - pad_left)``
and is dropped when that lies outside the output. Each tap is one matrix
product over all input pixels. It shares no index code with the compiled
backends, so tests use it as an independent oracle.
"""


def _landing(in_size, out_size, stride, offset):
    """Input indices ``i`` with ``0 <= i*stride + offset < out_size``, and where
    they land, as ``(input slice, output slice)``."""
    first = max(0, -(offset // stride))  # ceil(-offset / stride)
    stop = min(in_size, -(-(out_size - offset) // stride))  # ceil((out_size - offset) / stride)
    stop = max(stop, first)
    return slice(first, stop), slice(first * stride + offset, stop * stride + offset, stride)


def run(spec, x, filters, out):
    """Compute the transposed convolution of ``x`` into ``out`` (all NHWC)."""
    out[...] = 0
    group_in = spec.in_c // spec.groups
    group_out = spec.out_c // spec.groups
    for ky in range(spec.k_h):
        rows_in, rows_out = _landing(spec.in_h, spec.out_h, spec.stride_h, ky * spec.dil_h - spec.pad_top)
        for kx in range(spec.k_w):
            cols_in, cols_out = _landing(spec.in_w, spec.out_w, spec.stride_w, kx * spec.dil_w - spec.pad_left)
            for g in range(spec.groups):
                channels_in = slice(g * group_in, (g + 1) * group_in)
                taps = filters[ky, kx, :, channels_in]  # [C_out / G, C_in / G]
                out[:, rows_out, cols_out, g * group_out:(g + 1) * group_out] += x[:, rows_in, cols_in, channels_in] @ taps.T
