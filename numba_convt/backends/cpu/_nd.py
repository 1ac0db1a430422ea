"""1-D and 3-D calls on the 2-D plans.

A 1-D call is a 2-D call with a unit height, as in TensorFlow: the arrays
get a unit axis (a view), the 2-D plan runs them. A 3-D call is a sum over
depth taps: tap ``kd`` takes input depth ``id`` to output depth
``id*stride_d + kd*dil_d - pad_front``, so one 2-D plan over the batch of
all ``N * D_in`` input planes, with the filters of that tap, gives every
plane's share, which is added into the output depths it lands on. Each
output element then sums its depth taps in a fixed order (bitwise the same
for any thread count).
"""

import dataclasses

import numpy as np


def unit_height(spec):
    """A 1-D ``spec`` as the 2-D spec of its unit-height form (same layout)."""
    return dataclasses.replace(spec, rank=2, data_format="NCHW" if spec.channels_first else "NHWC")


def depth_tap(spec):
    """The 2-D spec of one depth tap of a 3-D ``spec``: its ``N * D_in`` input planes, channels last."""
    return dataclasses.replace(spec, rank=2, data_format="NHWC", batch=spec.batch * spec.in_d, in_d=1, out_d=1,
                               k_d=1, stride_d=1, dil_d=1, pad_front=0, pad_back=0)


@dataclasses.dataclass(frozen=True)
class UnitHeight:
    """A 1-D call run by ``plan``, the 2-D plan of its unit-height form."""

    plan: object

    @property
    def takes_nchw(self):
        """As the 2-D plan's: an NCW call's arrays then go as they are."""
        return self.plan.takes_nchw

    def run(self, x, filters, out):
        """``x``, ``out``: ``[N, W, C]`` (or ``[N, C, W]`` where :attr:`takes_nchw`); ``filters`` ``[K, C_out/G, C_in]``."""
        axis = 2 if self.plan.spec.channels_first and self.takes_nchw else 1
        self.plan.run(np.expand_dims(x, axis), filters[np.newaxis], np.expand_dims(out, axis))


@dataclasses.dataclass(frozen=True)
class DepthTaps:
    """A 3-D call as a sum over depth taps of one 2-D plan (see the module's docstring)."""

    spec: object
    plan: object  # the 2-D plan of one tap, over N * D_in planes
    takes_nchw = False

    def run(self, x, filters, out):
        """``x``, ``out``: ``[N, D, H, W, C]``; ``filters`` ``[KD, KH, KW, C_out/G, C_in]``."""
        spec = self.spec
        out[...] = 0
        if out.size == 0 or x.size == 0:
            return
        planes = x.reshape(spec.batch * spec.in_d, spec.in_h, spec.in_w, spec.in_c)
        shares = np.empty((spec.batch, spec.in_d, spec.out_h, spec.out_w, spec.out_c), out.dtype)
        for kd in range(spec.k_d):
            target = np.arange(spec.in_d) * spec.stride_d + kd * spec.dil_d - spec.pad_front
            lands = np.flatnonzero((target >= 0) & (target < spec.out_d))
            if lands.size:
                self.plan.run(planes, np.ascontiguousarray(filters[kd]), shares.reshape(planes.shape[0], *shares.shape[2:]))
                first, last = lands[0], lands[-1]  # consecutive planes, landing stride_d apart: slices, no copies
                out[:, target[first]:target[last] + 1:spec.stride_d] += shares[:, first:last + 1]
