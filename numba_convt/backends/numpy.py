"""Backend ``"numpy"``: the readable reference, straight from the definition.

It is the scatter form of the spec (section 3.2 of ``tf_nd_semantics.md``),
for 1, 2 and 3 spatial axes alike: input position ``i`` times the filter tap
``k`` lands on output position ``i*stride + k*dilation - pad_before`` on
every axis, and is dropped when that lies outside the output. Each tap is
one matrix product over all input positions. It shares no index code with
the compiled backends, so tests use it as an independent oracle.
"""

import itertools


def _landing(in_size, out_size, stride, offset):
    """Input indices ``i`` with ``0 <= i*stride + offset < out_size``, and where
    they land, as ``(input slice, output slice)``."""
    first = max(0, -(offset // stride))  # ceil(-offset / stride)
    stop = min(in_size, -(-(out_size - offset) // stride))  # ceil((out_size - offset) / stride)
    stop = max(stop, first)
    return slice(first, stop), slice(first * stride + offset, stop * stride + offset, stride)


def run(spec, x, filters, out):
    """Compute the transposed convolution of ``x`` into ``out`` (both channels-last)."""
    out[...] = 0
    axes = spec.axes
    group_in = spec.in_c // spec.groups
    group_out = spec.out_c // spec.groups
    all_ = slice(None)
    for taps in itertools.product(*(range(kernel) for _, _, kernel, *_ in axes)):
        landings = [
            _landing(in_size, out_size, stride, tap * dilation - pad)
            for (in_size, out_size, _, stride, dilation, pad), tap in zip(axes, taps)
        ]
        source, target = tuple(s for s, _ in landings), tuple(t for _, t in landings)
        for g in range(spec.groups):
            channels_in = slice(g * group_in, (g + 1) * group_in)
            weights = filters[(*taps, all_, channels_in)]  # [C_out / G, C_in / G]
            channels_out = slice(g * group_out, (g + 1) * group_out)
            out[(all_, *target, channels_out)] += x[(all_, *source, channels_in)] @ weights.T
