"""Record transposed convolutions from real PyTorch, JAX and Keras for ``tests/test_interop*.py``.

A maintenance tool, not a test dependency: run it where torch, jax and
tensorflow/keras are installed (this project's bench environment)::

    python tools/make_interop_golden.py      # 2-D: writes tests/data/interop_golden.npz
    python tools/make_interop_golden.py nd   # 1-D and 3-D: tests/data/interop_golden_nd.npz

The 2-D mode draws exactly what it always drew (same seed, same order).

Output (``np.savez_compressed``):

* ``cases``: 0-d str array, a JSON list of dicts with ``peer`` (``torch``,
  ``jax`` or ``keras``), ``id``, ``versions`` and the peer's own arguments
  exactly as passed (tuples written as lists); in the ``nd`` file also
  ``rank`` (1 or 3), ids ``{peer}-{rank}d-{n}``, and the peers' 1-D and 3-D
  functions and layouts below (``conv_transpose1d``, ``NWC``/``WIO``,
  ``Conv3DTranspose``, ...):

  - torch: ``stride``, ``padding``, ``output_padding``, ``dilation``,
    ``groups`` of ``torch.nn.functional.conv_transpose2d``; ``x`` is NCHW,
    ``w`` is ``[C_in, C_out / groups, kH, kW]``; float64.
  - jax: ``strides``, ``padding`` (``"SAME"``, ``"VALID"`` or ``[[lo, hi],
    [lo, hi]]``), ``rhs_dilation``, ``transpose_kernel``,
    ``use_consistent_padding`` of ``jax.lax.conv_transpose`` with dimension
    numbers ``("NHWC", "HWIO", "NHWC")``; float64 (``jax_enable_x64``).
  - keras: ``filters``, ``kernel_size``, ``strides``, ``padding``,
    ``output_padding``, ``dilation_rate`` of ``keras.layers.Conv2DTranspose``
    (``use_bias=False``, channels_last) whose kernel ``w`` was set with
    ``set_weights``; float32.

  - torch_tf (``nd`` only): ``output_shape``, ``strides``, ``padding``
    (``"SAME"``/``"VALID"``), ``dilations`` of a TF-style call on
    channels-first ``x`` with TF filters ``w`` ``[*K, C_out / G, C_in]``, and
    ``torch``: the keyword arguments that ``to_torch`` of
    ``docs/interop.md`` gave for it; ``y`` is PyTorch's whole result (before
    that function's slice); float64.

* ``x{i}``, ``w{i}``, ``y{i}``: input, weight/kernel and the peer's output.
* ``refused``: 0-d str array, a JSON list of the draws the peer refused:
  ``peer``, ``error`` (the exception's type), ``input_shape``,
  ``weight_shape`` and the arguments as above.

Arguments are drawn with a fixed seed from each peer's own accepted range
(PyTorch: ``output_padding < max(stride, dilation)``; Keras: dilation > 1
only with stride 1), so some cases lie outside TensorFlow's size rule on
purpose: ``docs/interop.md`` says how those map. A draw the peer refuses
is recorded in ``refused`` without arrays.
"""

import json
import os
import re
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

SEED = 7
DATA = os.path.join(os.path.dirname(__file__), "..", "tests", "data")
# what each mode records: its file, and per rank and peer the number of cases
MODES = {
    "2d": ("interop_golden.npz", {2: {"torch": 16, "jax": 18, "keras": 12}}),
    "nd": ("interop_golden_nd.npz", {rank: {"torch": 10, "jax": 14, "keras": 10, "torch_tf": 8} for rank in (1, 3)}),
}
# jax.lax.conv_transpose's channels-last dimension numbers per rank
JAX_DIMENSIONS = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}


def _per_axis(rng, low, high, rank):
    """An int, or one value per spatial axis, drawn from ``[low, high]``."""
    if rng.random() < 0.5:
        return int(rng.integers(low, high + 1))
    return [int(v) for v in rng.integers(low, high + 1, size=rank)]


def _axes(value, rank):
    return (value,) * rank if isinstance(value, int) else tuple(value)


def _sizes(rng, low, high, rank):
    return [int(v) for v in rng.integers(low, high + 1, size=rank)]


class Refused(Exception):
    """The peer raised for these arguments."""

    def __init__(self, error, args, x, w):
        super().__init__(f"{type(error).__name__}: {str(error).splitlines()[0][:120]}")
        self.record = dict(error=type(error).__name__, input_shape=list(x.shape), weight_shape=list(w.shape), **args)


def _call(peer_function, args, x, w):
    """``peer_function()``, with a refusal turned into :class:`Refused`."""
    try:
        return np.asarray(peer_function())
    except Exception as error:
        raise Refused(error, args, x, w) from error


def _torch_case(rng, rank):
    import torch

    groups = int(rng.choice([1, 1, 2, 3]))
    c_in, c_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    k = _sizes(rng, 1, 4, rank)
    stride, dilation = _per_axis(rng, 1, 3, rank), _per_axis(rng, 1, 3, rank)
    # PyTorch's own rule: output_padding < max(stride, dilation), per dimension.
    limit = [max(s, d) - 1 for s, d in zip(_axes(stride, rank), _axes(dilation, rank))]
    output_padding = [int(rng.integers(0, m + 1)) for m in limit]
    padding = [int(rng.integers(0, (kk - 1) * d + 1)) for kk, d in zip(k, _axes(dilation, rank))]
    x = rng.standard_normal((int(rng.integers(1, 3)), c_in, *_sizes(rng, 1, 5, rank)))
    w = rng.standard_normal((c_in, c_out // groups, *k))
    args = dict(stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)
    function = getattr(torch.nn.functional, f"conv_transpose{rank}d")
    y = _call(lambda: function(torch.from_numpy(x), torch.from_numpy(w), **args), args, x, w)
    return args, x, w, y


def _jax_case(rng, rank):
    import jax
    import jax.numpy as jnp

    strides = _sizes(rng, 1, 3, rank)
    rhs_dilation = _sizes(rng, 1, 2, rank)
    k = _sizes(rng, 1, 4, rank)
    effective = [(kk - 1) * d + 1 for kk, d in zip(k, rhs_dilation)]
    padding = str(rng.choice(["SAME", "VALID", "explicit"]))
    if padding == "explicit":  # past the kernel's reach and negative too: JAX allows both
        padding = [[int(v) for v in rng.integers(-1, e + 2, size=2)] for e in effective]
    c_in, c_out = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    transpose_kernel = bool(rng.integers(2))
    x = rng.standard_normal((int(rng.integers(1, 3)), *_sizes(rng, 1, 5, rank), c_in))
    # [*k, I, O]; with transpose_kernel=True the kernel's I/O roles swap ([*k, C_out, C_in]).
    w = rng.standard_normal((*k, c_out, c_in) if transpose_kernel else (*k, c_in, c_out))
    args = dict(
        strides=strides, padding=padding, rhs_dilation=rhs_dilation,
        transpose_kernel=transpose_kernel, use_consistent_padding=bool(rng.integers(2)),
    )
    y = _call(lambda: jax.lax.conv_transpose(
        jnp.asarray(x), jnp.asarray(w), strides, padding if isinstance(padding, str) else [tuple(p) for p in padding],
        rhs_dilation=rhs_dilation, dimension_numbers=JAX_DIMENSIONS[rank],
        transpose_kernel=transpose_kernel, use_consistent_padding=args["use_consistent_padding"],
        precision=jax.lax.Precision.HIGHEST,
    ), args, x, w)
    return args, x, w, y


def _keras_case(rng, rank):
    import keras

    strides = _sizes(rng, 1, 3, rank)
    dilation_rate = [1] * rank if max(strides) > 1 else _sizes(rng, 1, 2, rank)
    k = _sizes(rng, 1, 4, rank)
    padding = str(rng.choice(["same", "valid"]))
    output_padding = None if rng.random() < 0.4 else [int(rng.integers(0, s)) for s in strides]
    c_in, c_out = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    x = rng.standard_normal((int(rng.integers(1, 3)), *_sizes(rng, 1, 5, rank), c_in)).astype(np.float32)
    w = rng.standard_normal((*k, c_out, c_in)).astype(np.float32)
    args = dict(filters=c_out, kernel_size=k, strides=strides, padding=padding,
                output_padding=output_padding, dilation_rate=dilation_rate)
    layer = getattr(keras.layers, f"Conv{rank}DTranspose")(use_bias=False, dtype="float32", **args)
    layer.build(x.shape)
    layer.set_weights([w])
    return args, x, w, _call(lambda: layer(x), args, x, w)


def _torch_tf_case(rng, rank):
    """A TF-style SAME/VALID call (channels first) run in PyTorch through ``to_torch`` of docs/interop.md."""
    import torch

    groups = int(rng.choice([1, 2]))
    c_in, c_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    k, strides, dilations = _sizes(rng, 1, 4, rank), _sizes(rng, 1, 3, rank), _sizes(rng, 1, 2, rank)
    padding = str(rng.choice(["SAME", "VALID"]))
    x = rng.standard_normal((int(rng.integers(1, 3)), c_in, *_sizes(rng, 1, 5, rank)))
    f = rng.standard_normal((*k, c_out // groups, c_in))
    sizes = [int(rng.choice(_tf_sizes(*axis, padding))) for axis in zip(x.shape[2:], k, strides, dilations)]
    output_shape = [x.shape[0], c_out, *sizes]
    weight, kwargs, _ = _doc_function("to_torch")(x.shape, f, output_shape, strides, padding, dilations)
    args = dict(output_shape=output_shape, strides=strides, padding=padding, dilations=dilations,
                torch={key: list(v) if isinstance(v, tuple) else v for key, v in kwargs.items()})
    function = getattr(torch.nn.functional, f"conv_transpose{rank}d")
    y = _call(lambda: function(torch.from_numpy(x), torch.from_numpy(np.ascontiguousarray(weight)), **kwargs),
              args, x, f)
    return args, x, f, y  # y: PyTorch's whole result, before to_torch's slice


def _tf_sizes(in_size, kernel, stride, dilation, padding):
    """The output sizes TF's rule accepts for SAME or VALID (in_size >= 1)."""
    if padding == "SAME":
        return range((in_size - 1) * stride + 1, in_size * stride + 1)
    low = (in_size - 1) * stride + (kernel - 1) * dilation + 1
    return range(low, low + stride)


def _doc_function(name):
    """A function defined in a code block of docs/interop.md (the one under test)."""
    doc = open(os.path.join(os.path.dirname(__file__), "..", "docs", "interop.md")).read()
    namespace = {}
    exec(next(block for block in re.findall(r"```python\n(.*?)```", doc, re.S) if f"def {name}(" in block),
         namespace)
    return namespace[name]


def _versions():
    import jax
    import keras
    import tensorflow as tf
    import torch

    return {"torch": torch.__version__, "jax": jax.__version__,
            "keras": f"{keras.__version__} (tensorflow {tf.__version__})"}


def main(mode="2d"):
    import jax

    jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(SEED)
    makers = {"torch": _torch_case, "jax": _jax_case, "keras": _keras_case, "torch_tf": _torch_tf_case}
    versions = _versions()
    versions["torch_tf"] = versions["torch"]
    file_name, plan = MODES[mode]
    cases, refused, arrays = [], [], {}
    for rank, counts in plan.items():
        suffix = "" if mode == "2d" else f"-{rank}d"  # the 2-D file's ids and fields stay as recorded
        extra = {} if mode == "2d" else {"rank": rank}
        for peer, count in counts.items():
            made = 0
            while made < count:
                try:
                    args, x, w, y = makers[peer](rng, rank)
                except Refused as error:  # e.g. a negative size, or TF's rule in Keras
                    refused.append(dict(peer=peer, versions=versions[peer], **extra, **error.record))
                    print(f"refused by {peer} ({rank}-D): {error}")
                    continue
                i = len(cases)
                cases.append(dict(peer=peer, id=f"{peer}{suffix}-{made}", versions=versions[peer], **extra, **args))
                arrays.update({f"x{i}": x, f"w{i}": w, f"y{i}": y})
                made += 1
            print(f"{peer} ({rank}-D): {made} cases")
    path = os.path.join(DATA, file_name)
    np.savez_compressed(path, cases=np.array(json.dumps(cases)), refused=np.array(json.dumps(refused)), **arrays)
    print(f"wrote {os.path.normpath(path)}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main(*sys.argv[1:])
