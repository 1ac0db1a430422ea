"""3-D calls on the 2-D plans.

Output depth ``od`` sums depth taps ``kd`` with ``od = id*stride_d +
kd*dil_d - pad_front``: the output depths of one phase ``r`` (``od % stride_d
== r``) meet the same taps, tap ``kd`` bringing input depth ``id = j +
base(kd)`` to the phase's ``j``-th output depth. So a phase is one 2-D call
over its ``N * D_r`` output planes, whose input planes hold every tap's
input plane side by side as channels (``[G, taps, C_in/G]``, the filters
gathered to match): the kernels sum the taps with the channels, and write
the output planes (in place where ``stride_d`` is 1 and the planes are
contiguous, else through a phase buffer). The gathered planes are bounded
(``_GATHER_BYTES``): long phases run in chunks of output depths.

A tap whose input depth lies outside the input is gathered as zeros, which
is the definition's dropped term for finite filters; filters with an
infinity or NaN (``0 * inf`` is NaN) run :class:`DepthShares` instead: one
2-D call over the input planes with every tap's output channels side by
side, each tap's share then added where it lands.
"""

import dataclasses

import numpy as np

from ..._scratch import scratch

_GATHER_BYTES = 32 << 20  # a 3-D call's gathered input planes (or shares): at most this, or one plane's


def volume(spec, plan):
    """The :class:`DepthPhases` of a 3-D ``spec``, its 2-D plans made by ``plan(spec_2d)``."""
    phases, plans = [], {}
    for r in range(min(spec.stride_d, spec.out_d)):
        taps = tuple(kd for kd in range(spec.k_d) if (r + spec.pad_front - kd * spec.dil_d) % spec.stride_d == 0)
        depths = len(range(r, spec.out_d, spec.stride_d))
        chunk, sizes = _chunks(depths, spec.batch * spec.in_h * spec.in_w * len(taps) * spec.in_c
                               * spec.compute_dtype.itemsize)
        phases.append((r, taps, depths, chunk))
        for planes in (sizes if taps else ()):
            if (len(taps), planes) not in plans:
                plans[len(taps), planes] = plan(_planes_spec(spec, spec.batch * planes, in_c=len(taps) * spec.in_c))
    return DepthPhases(spec, tuple(phases), plans, _shares(spec, plan))


def _chunks(count, nbytes):
    """How many of ``count`` planes of ``nbytes`` each a 2-D call takes (within
    ``_GATHER_BYTES``, at least one), and the counts its calls see."""
    chunk = max(1, min(count, _GATHER_BYTES // max(nbytes, 1)))
    return chunk, {chunk, count % chunk or chunk}


def _planes_spec(spec, planes, **changes):
    """The 2-D spec of ``planes`` channels-last planes of a 3-D ``spec``, with ``changes``."""
    return dataclasses.replace(spec, rank=2, data_format="NHWC", batch=planes, in_d=1, out_d=1, k_d=1, stride_d=1,
                               dil_d=1, pad_front=0, pad_back=0, **changes)


@dataclasses.dataclass(frozen=True)
class DepthPhases:
    """A 3-D call as one 2-D call per depth phase (see the module's docstring)."""

    spec: object
    phases: tuple  # (r, taps, output depths, output depths per 2-D call) per phase
    plans: dict  # (taps, output depths) -> 2-D plan
    fallback: "DepthShares"
    takes_nchw = False

    def run(self, x, filters, out):
        """``x``, ``out``: ``[N, D, H, W, C]``; ``filters`` ``[KD, KH, KW, C_out/G, C_in]``."""
        if out.size == 0:
            return
        if x.size == 0:
            out[...] = 0
        elif filters.dtype.kind in "iu" or np.isfinite(filters).all():
            for phase in self.phases:
                self._phase(x, filters, out, *phase)
        else:
            self.fallback.run(x, filters, out)

    def _phase(self, x, filters, out, r, taps, depths, chunk):
        spec = self.spec
        phase = out[:, r::spec.stride_d]
        if not taps:
            phase[...] = 0
            return
        groups = spec.groups
        weights = filters[list(taps)].reshape(len(taps), *filters.shape[1:4], groups, -1)
        weights = np.ascontiguousarray(weights.transpose(1, 2, 3, 4, 0, 5)).reshape(*filters.shape[1:4], -1)
        for first in range(0, depths, chunk):
            planes = min(chunk, depths - first)
            gathered = self._gather(x, taps, r, first, planes)
            in_place = spec.stride_d == 1 and (spec.batch == 1 or planes == depths)
            target = (phase[:, first:first + planes] if in_place
                      else scratch("phase", (spec.batch, planes, *out.shape[2:]), out.dtype))
            self.plans[len(taps), planes].run(gathered.reshape(-1, *gathered.shape[2:4], weights.shape[-1]), weights,
                                              target.reshape(-1, *out.shape[2:]))
            if not in_place:
                phase[:, first:first + planes] = target

    def _gather(self, x, taps, r, first, planes):
        """Output depths ``first...`` of phase ``r``: each tap's input plane as channels ``[G, taps, C_in/G]``."""
        spec = self.spec
        n, _, h, w, c = x.shape
        grouped = x.reshape(n, spec.in_d, h, w, spec.groups, c // spec.groups)
        gathered = scratch("gathered", (n, planes, h, w, spec.groups, len(taps), c // spec.groups), x.dtype)
        for t, kd in enumerate(taps):
            base = first + (r + spec.pad_front - kd * spec.dil_d) // spec.stride_d  # input depth of output depth 0
            start, stop = min(planes, max(0, -base)), max(0, min(planes, spec.in_d - base))
            gathered[:, :start, ..., t, :] = 0
            gathered[:, stop:, ..., t, :] = 0
            if start < stop:
                gathered[:, start:stop, ..., t, :] = grouped[:, base + start:base + stop]
        return gathered


def _shares(spec, plan):
    """The :class:`DepthShares` of a 3-D ``spec``."""
    slab, depths = _chunks(spec.in_d, spec.batch * spec.out_h * spec.out_w * spec.k_d * spec.out_c
                           * spec.compute_dtype.itemsize)
    return DepthShares(spec, slab, {d: plan(_planes_spec(spec, spec.batch * d, out_c=spec.k_d * spec.out_c))
                                    for d in depths})


@dataclasses.dataclass(frozen=True)
class DepthShares:
    """A 3-D call as 2-D calls over slabs of input depths, every depth tap's
    output channels side by side (``[G, KD, C_out/G]``), each tap's share of
    a plane then added into the output depth it lands on, taps in order."""

    spec: object
    slab: int  # input depths per 2-D call
    plans: dict  # input depths of a slab -> its 2-D plan

    def run(self, x, filters, out):
        """As :meth:`DepthPhases.run`, for arrays that are not empty."""
        spec = self.spec
        out[...] = 0
        k_d, k_h, k_w, group_out, in_c = filters.shape
        side_by_side = np.ascontiguousarray(filters.transpose(1, 2, 0, 3, 4)).reshape(k_h, k_w, k_d * group_out, in_c)
        by_group = out.reshape(*out.shape[:4], spec.groups, group_out)
        for first in range(0, spec.in_d, self.slab):
            depths = min(self.slab, spec.in_d - first)
            planes = np.ascontiguousarray(x[:, first:first + depths]).reshape(-1, spec.in_h, spec.in_w, in_c)
            shares = scratch("shares", (spec.batch, depths, spec.out_h, spec.out_w, spec.groups, k_d, group_out),
                             out.dtype)
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
