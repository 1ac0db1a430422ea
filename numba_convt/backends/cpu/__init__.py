"""Backend ``"cpu"``: phase-decomposed Numba kernels, plus a BLAS path.

Output row ``(n, oy)`` only meets filter rows ``ky`` with
``(oy + pad_top - ky*dil_h) % stride_h == 0`` and, within the row, output
columns of one phase ``ox = ox0 + stride_w*b`` only meet the filter columns
``kx`` of that phase, at input column ``b + c(kx)``. So every kernel loops
over (row, column phase, valid taps) with no modulo test and no product with
an inserted zero, and writes each output element from one thread in a fixed
order of summation; how work is split into tasks depends on the shapes and
the machine's core count only. Results are bitwise identical for any thread
count.

:func:`plan` picks the kernel for a spec once, by the cost model
(``_cost``):

- ``"blas"`` (``_gemm``): float and complex layers with 16 or more input
  channels. Each task computes ``Y = x @ W`` for its input rows with one
  GEMM of NumPy's own OpenBLAS, called on the task's thread (``_blas``), and
  gathers ``Y`` into its output rows; kernels whose taps split evenly over
  the phases use the sub-pixel form, one GEMM over all taps, copied out.
- ``"tiled"`` (``_tiled``): most float layers with 16 or more output
  channels (per group). A register tile with explicit vectors (``_tile``,
  512-bit where the CPU has them) sums every tap of a phase into 8 pixels
  by 32 channels.
- ``"dot"`` (``_dot``): NHWC float layers with fewer output channels (per
  group); a dot kernel (``_tile``) gives a few pixels all their channels.
- ``"direct"`` (``_direct``): loops for every dtype and groups.

The tile and dot kernels run a group as a sub-problem: its slice of the
input channels (their depth, with the row step of all ``C_in``), of the
filters and of the output row.

The BLAS and tiled paths read and write NCHW in place; the others index
NHWC. Layers BLAS's cost model does not take (fewer than 16 input channels,
groups, few pixels) run whichever of the direct loops, the tile and the dot
kernel needs the fewest vector operations. ``_rows`` holds the index
helpers the kernels share. 1-D and 3-D calls run on 2-D plans (``_nd``, ``_volume``).
"""

from dataclasses import dataclass

import numpy as np

from ..._layout import change_layout
from ..._normalize import Spec
from . import _cost, _direct, _dot, _gemm, _nd, _tiled, _volume


@dataclass(frozen=True)
class Plan:
    """How the backend runs one spec, decided once by :func:`plan`.

    Immutable and without per-call state: one plan serves any number of
    calls, from any threads.

    Attributes
    ----------
    spec : numba_convt.Spec
        The normalized call.
    path : {"blas", "tiled", "dot", "direct"}
        The kernel that runs it.
    takes_nchw : bool
        Whether :meth:`run` takes an NCHW call's arrays as they are (the
        BLAS and tiled paths); else the caller converts them to NHWC.
    args : tuple
        Strides, dilations, ``pad_top`` and ``pad_left``: every kernel's last arguments.
    work : int
        About how many multiply-adds a call does: whether a kernel runs whole or in parallel shares.
    split : tuple
        The path's split into tasks: ``(sub-pixel?, images, band, GEMMs alone?)`` (BLAS),
        ``(band, pad_left, width, copy)`` (tiled), ``(band,)`` (dot) or the
        direct loops' ``(form,)``.
    fallback : Plan or None
        The tiled path's, for filters not all finite: BLAS or the direct loops.
    """

    spec: Spec
    path: str
    takes_nchw: bool
    args: tuple
    work: int
    split: tuple
    fallback: "Plan | None"

    def run(self, x, filters, out):
        """Compute the transposed convolution of ``x`` into ``out``.

        Parameters
        ----------
        x, filters : numpy.ndarray
            C-contiguous input, NHWC or, where ``takes_nchw``, in
            ``spec.data_format``; and ``[KH, KW, C_out / G, C_in]`` filters.
        out : numpy.ndarray
            C-contiguous result in the layout of ``x``, every element of which is written.
        """
        if out.size == 0:
            return
        if x.size == 0:
            out[...] = 0
            return
        self._compute(x, filters, out)

    def _compute(self, x, filters, out):
        """:meth:`run` on arrays that are not empty."""
        if self.path == "blas":
            _gemm._run_blas(self, x, filters, out)
        elif self.path == "dot":
            _dot._run_dot(self, x, filters, out)
        elif self.path == "direct":
            _direct._run_direct(self, x, filters, out)
        elif not _tiled._run_tiled(self, x, filters, out):  # a filter value is not finite
            self._fall_back(x, filters, out)

    def _fall_back(self, x, filters, out):
        """The fallback of the tiled path; the direct loops take NCHW through NHWC copies."""
        if self.spec.data_format == "NCHW" and not self.fallback.takes_nchw:
            result = np.empty(self.spec.nhwc_output_shape, out.dtype)
            self.fallback._compute(change_layout(x, True, x.dtype), filters, result)
            change_layout(result, False, out.dtype, out)
        else:
            self.fallback._compute(x, filters, out)


def plan(spec):
    """Decide how to run ``spec``: the path and all that depends on the spec only.

    Parameters
    ----------
    spec : numba_convt.Spec
        The normalized call.

    Returns
    -------
    Plan
        Its ``run(x, filters, out)`` computes the call; for 1-D and 3-D
        calls, an ``_nd`` or ``_volume`` plan made of 2-D ones.
    """
    if spec.rank == 1:
        return _nd.signal(spec, plan)
    if spec.rank == 3:
        return _volume.volume(spec, plan)
    empty = 0 in (spec.batch, spec.in_h, spec.in_w, spec.in_c, spec.out_h, spec.out_w)  # no kernel runs
    return _plan(spec, "direct" if empty else _cost._path(spec))


def _plan(spec, path):
    fallback = None
    if path == "tiled":  # BLAS where its cost model takes the layer
        fallback = _plan(spec, "blas" if _cost._use_blas(spec) else "direct")
    args = (spec.stride_h, spec.stride_w, spec.dil_h, spec.dil_w, spec.pad_top, spec.pad_left)
    return Plan(spec, path, path in ("blas", "tiled"), args, _cost._work(spec), _split_for(spec, path), fallback)


def _split_for(spec, path):
    """:attr:`Plan.split` of ``path``."""
    if path == "blas":
        return (*_cost._split(spec)[:3], _cost._gemms_alone(spec))
    if path == "tiled":
        return _cost._tiled_geometry(spec, _cost._tile_kernel(spec)[1])[:4]
    if path == "dot":
        return (_cost._rows_per_task(spec),)
    return (_direct._form(spec),)


def takes_nchw(spec):
    """Whether :func:`run` takes this NCHW call's arrays as they are (see :class:`Plan`)."""
    return plan(spec).takes_nchw


def run(spec, x, filters, out):
    """Compute the transposed convolution of ``x`` into ``out``: ``plan(spec).run(x, filters, out)``.

    Parameters
    ----------
    spec : numba_convt.Spec
        The normalized call.
    x, filters, out : numpy.ndarray
        As for :meth:`Plan.run`.
    """
    plan(spec).run(x, filters, out)
