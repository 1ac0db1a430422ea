"""1-D calls on the 2-D plans.

A 1-D call is a 2-D call with a unit height, as in TensorFlow: the arrays
get a unit axis (a view), the 2-D plan runs them. Fewer signals than cores
would then be fewer rows than cores (the kernels split work by rows), so a
long signal is cut into segments of ``length`` consecutive outputs, a whole
number of stride phases: segment ``r``'s outputs need the input window that
starts ``r * length / stride`` samples later than segment 0's, and the
same 2-D geometry (the window's offset folded into ``pad_left``), so the
windows, copied side by side as rows, run as one 2-D call whose output rows
are the signal's segments.
"""

import dataclasses

import numpy as np

from ..._scratch import scratch
from ._cost import _MIN_TASKS as _CORES  # the machine's cores, whatever set_num_threads says

_SEGMENT_OUTPUTS = 4096  # a segment of a long 1-D signal gives at least this many outputs


def signal(spec, plan):
    """The :class:`Signal` of a 1-D ``spec``, its 2-D plan made by ``plan(spec_2d)``."""
    as_2d = dataclasses.replace(spec, rank=2, data_format="NCHW" if spec.channels_first else "NHWC")
    segments = min(4 * _CORES, spec.out_w // _SEGMENT_OUTPUTS) if spec.batch < _CORES and spec.in_w else 1
    if segments < 2:
        return Signal(plan(as_2d), 1, 0, spec.in_w)
    stride, pad = spec.stride_w, spec.pad_left
    length = -(-spec.out_w // segments // stride) * stride  # outputs per segment, whole phases
    segments = -(-spec.out_w // length)
    first = (pad - (spec.k_w - 1) * spec.dil_w) // stride  # input of segment 0's first tap (floor: pad stays >= 0)
    window = (length - 1 + pad) // stride - first + 1
    rows = dataclasses.replace(as_2d, in_h=segments, out_h=segments, in_w=window, out_w=length,
                               pad_left=pad - first * stride, pad_right=0)
    return Signal(plan(rows), segments, first, window)


@dataclasses.dataclass(frozen=True)
class Signal:
    """A 1-D call as a 2-D plan: of its unit-height form, or, for a few long
    signals, of ``segments`` rows, each a window of the input giving
    ``length`` consecutive outputs (see the module's docstring)."""

    plan: object
    segments: int
    first: int  # input sample of segment 0's window start (may be negative: zeros)
    window: int  # input samples per segment

    @property
    def takes_nchw(self):
        """As the 2-D plan's: an NCW call's arrays then go as they are."""
        return self.plan.takes_nchw

    def run(self, x, filters, out):
        """``x``, ``out``: ``[N, W, C]`` (``[N, C, W]`` if :attr:`takes_nchw`); ``filters``: ``[K, C_out/G, C_in]``."""
        axis = 2 if self.plan.spec.channels_first and self.takes_nchw else 1
        if self.segments == 1:
            self.plan.run(np.expand_dims(x, axis), filters[np.newaxis], np.expand_dims(out, axis))
            return
        length = self.plan.spec.out_w
        whole = out.shape[axis] == self.segments * length
        rows = out if whole else scratch("segments", _replaced(out.shape, axis, self.segments * length), out.dtype)
        self.plan.run(self._windows(x, axis), filters[np.newaxis],
                      rows.reshape(_replaced(rows.shape, axis, self.segments, length)))
        if not whole:
            out[...] = rows[(slice(None),) * axis + (slice(out.shape[axis]),)]

    def _windows(self, x, axis):
        """The segments' input windows: ``x`` with its signal ``axis`` split into
        ``segments`` overlapping windows (zeros outside the signal), C-contiguous."""
        step = self.plan.spec.out_w // self.plan.spec.stride_w
        before = max(0, -self.first)
        after = max(0, self.first + (self.segments - 1) * step + self.window - x.shape[axis])
        pads = [(0, 0)] * x.ndim
        pads[axis] = (before, after)
        padded = np.pad(x, pads)[(slice(None),) * axis + (slice(self.first + before, None),)]
        shape = _replaced(padded.shape, axis, self.segments, self.window)
        strides = (*padded.strides[:axis], step * padded.strides[axis], *padded.strides[axis:])
        return np.ascontiguousarray(np.lib.stride_tricks.as_strided(padded, shape, strides, writeable=False))


def _replaced(shape, axis, *sizes):
    """``shape`` with ``axis`` replaced by ``sizes`` (one size, or ``segments, length``)."""
    return (*shape[:axis], *sizes, *shape[axis + 1:])
