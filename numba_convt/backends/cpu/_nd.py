"""1-D and 3-D calls on the 2-D plans.

A 1-D call is a 2-D call with a unit height, as in TensorFlow: the arrays
get a unit axis (a view), the 2-D plan runs them. A 3-D call is a sum over
depth taps: tap ``kd`` takes input depth ``id`` to output depth
``id*stride_d + kd*dil_d - pad_front``. One 2-D plan runs the ``N * D_in``
input planes with every depth tap's filters side by side (as output
channels ``[G, KD, C_out/G]``), so the kernels see all ``KD * C_out``
channels at once; each tap's share of each plane is then added into the
output depth it lands on, taps in order (bitwise the same for any thread
count). The shares buffer is bounded (``_SHARES_BYTES`` or the result's
size): larger volumes run in slabs of input depths.
"""

import dataclasses

import numpy as np

_SHARES_BYTES = 32 << 20  # a 3-D call's shares buffer: at most this, or the result's size


def unit_height(spec):
    """A 1-D ``spec`` as the 2-D spec of its unit-height form (same layout)."""
    return dataclasses.replace(spec, rank=2, data_format="NCHW" if spec.channels_first else "NHWC")


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


def depth_taps(spec, plan):
    """The :class:`DepthTaps` of a 3-D ``spec``, its 2-D plans made by ``plan(spec_2d)``."""
    plane = spec.batch * spec.out_h * spec.out_w * spec.k_d * spec.out_c * spec.compute_dtype.itemsize
    result = spec.out_d * plane // spec.k_d
    slab = max(1, min(spec.in_d, max(_SHARES_BYTES, result) // max(plane, 1)))
    depths = {slab, spec.in_d % slab or slab}
    return DepthTaps(spec, slab, {d: plan(_slab_spec(spec, d)) for d in depths})


def _slab_spec(spec, depths):
    """The 2-D spec of ``depths`` input depths: ``N * depths`` planes, channels last, the depth taps'
    output channels side by side."""
    return dataclasses.replace(spec, rank=2, data_format="NHWC", batch=spec.batch * depths, out_c=spec.k_d * spec.out_c,
                               in_d=1, out_d=1, k_d=1, stride_d=1, dil_d=1, pad_front=0, pad_back=0)


@dataclasses.dataclass(frozen=True)
class DepthTaps:
    """A 3-D call as 2-D plans over slabs of input depths (see the module's docstring)."""

    spec: object
    slab: int  # input depths per 2-D run
    plans: dict  # depths of a slab -> its 2-D plan
    takes_nchw = False

    def run(self, x, filters, out):
        """``x``, ``out``: ``[N, D, H, W, C]``; ``filters`` ``[KD, KH, KW, C_out/G, C_in]``."""
        spec = self.spec
        out[...] = 0
        if out.size == 0 or x.size == 0:
            return
        k_d, k_h, k_w, group_out, in_c = filters.shape
        side_by_side = np.ascontiguousarray(filters.transpose(1, 2, 0, 3, 4)).reshape(k_h, k_w, k_d * group_out, in_c)
        by_group = out.reshape(*out.shape[:4], spec.groups, group_out)
        for first in range(0, spec.in_d, self.slab):
            depths = min(self.slab, spec.in_d - first)
            planes = np.ascontiguousarray(x[:, first:first + depths]).reshape(-1, spec.in_h, spec.in_w, in_c)
            shares = np.empty((spec.batch, depths, spec.out_h, spec.out_w, spec.groups, k_d, group_out), out.dtype)
            self.plans[depths].run(planes, side_by_side, shares.reshape(planes.shape[0], spec.out_h, spec.out_w, -1))
            self._add(shares, first, by_group)

    def _add(self, shares, first, by_group):
        """Add each depth tap's share of input depths ``first...`` into the output depths it lands on."""
        spec = self.spec
        for kd in range(spec.k_d):
            target = (first + np.arange(shares.shape[1])) * spec.stride_d + kd * spec.dil_d - spec.pad_front
            lands = np.flatnonzero((target >= 0) & (target < spec.out_d))
            if lands.size:  # consecutive depths, landing stride_d apart: slices, no copies
                start, stop = lands[0], lands[-1] + 1
                by_group[:, target[start]:target[stop - 1] + 1:spec.stride_d] += shares[:, start:stop, ..., kd, :]
