"""Record transposed convolutions from real PyTorch, JAX and Keras for ``tests/test_interop.py``.

A maintenance tool, not a test dependency: run it where torch, jax and
tensorflow/keras are installed (this project's bench environment)::

    python tools/make_interop_golden.py      # writes tests/data/interop_golden.npz

Output (``np.savez_compressed``):

* ``cases``: 0-d str array, a JSON list of dicts with ``peer`` (``torch``,
  ``jax`` or ``keras``), ``id``, ``versions`` and the peer's own arguments
  exactly as passed (tuples written as lists):

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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

SEED = 7
OUT_PATH = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "interop_golden.npz")
PER_PEER = {"torch": 16, "jax": 18, "keras": 12}


def _pair(rng, low, high):
    """An int, or a (h, w) pair, drawn from ``[low, high]``."""
    if rng.random() < 0.5:
        return int(rng.integers(low, high + 1))
    return [int(v) for v in rng.integers(low, high + 1, size=2)]


def _hw(value):
    return (value, value) if isinstance(value, int) else tuple(value)


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


def _torch_case(rng):
    import torch

    groups = int(rng.choice([1, 1, 2, 3]))
    c_in, c_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    k = [int(v) for v in rng.integers(1, 5, size=2)]
    stride, dilation = _pair(rng, 1, 3), _pair(rng, 1, 3)
    # PyTorch's own rule: output_padding < max(stride, dilation), per dimension.
    limit = [max(s, d) - 1 for s, d in zip(_hw(stride), _hw(dilation))]
    output_padding = [int(rng.integers(0, m + 1)) for m in limit]
    padding = [int(rng.integers(0, (kk - 1) * d + 1)) for kk, d in zip(k, _hw(dilation))]
    x = rng.standard_normal((int(rng.integers(1, 3)), c_in, *rng.integers(1, 6, size=2)))
    w = rng.standard_normal((c_in, c_out // groups, *k))
    args = dict(stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)
    y = _call(lambda: torch.nn.functional.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w), **args),
              args, x, w)
    return args, x, w, y


def _jax_case(rng):
    import jax
    import jax.numpy as jnp

    strides = [int(v) for v in rng.integers(1, 4, size=2)]
    rhs_dilation = [int(v) for v in rng.integers(1, 3, size=2)]
    k = [int(v) for v in rng.integers(1, 5, size=2)]
    effective = [(kk - 1) * d + 1 for kk, d in zip(k, rhs_dilation)]
    padding = str(rng.choice(["SAME", "VALID", "explicit"]))
    if padding == "explicit":  # past the kernel's reach and negative too: JAX allows both
        padding = [[int(v) for v in rng.integers(-1, e + 2, size=2)] for e in effective]
    c_in, c_out = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    transpose_kernel = bool(rng.integers(2))
    x = rng.standard_normal((int(rng.integers(1, 3)), *rng.integers(1, 6, size=2), c_in))
    # HWIO; with transpose_kernel=True the kernel's I/O roles swap ([kH, kW, C_out, C_in]).
    w = rng.standard_normal((*k, c_out, c_in) if transpose_kernel else (*k, c_in, c_out))
    args = dict(
        strides=strides, padding=padding, rhs_dilation=rhs_dilation,
        transpose_kernel=transpose_kernel, use_consistent_padding=bool(rng.integers(2)),
    )
    y = _call(lambda: jax.lax.conv_transpose(
        jnp.asarray(x), jnp.asarray(w), strides, padding if isinstance(padding, str) else [tuple(p) for p in padding],
        rhs_dilation=rhs_dilation, dimension_numbers=("NHWC", "HWIO", "NHWC"),
        transpose_kernel=transpose_kernel, use_consistent_padding=args["use_consistent_padding"],
        precision=jax.lax.Precision.HIGHEST,
    ), args, x, w)
    return args, x, w, y


def _keras_case(rng):
    import keras

    strides = [int(v) for v in rng.integers(1, 4, size=2)]
    dilation_rate = [1, 1] if max(strides) > 1 else [int(v) for v in rng.integers(1, 3, size=2)]
    k = [int(v) for v in rng.integers(1, 5, size=2)]
    padding = str(rng.choice(["same", "valid"]))
    output_padding = None if rng.random() < 0.4 else [int(rng.integers(0, s)) for s in strides]
    c_in, c_out = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    x = rng.standard_normal((int(rng.integers(1, 3)), *rng.integers(1, 6, size=2), c_in)).astype(np.float32)
    w = rng.standard_normal((*k, c_out, c_in)).astype(np.float32)
    args = dict(filters=c_out, kernel_size=k, strides=strides, padding=padding,
                output_padding=output_padding, dilation_rate=dilation_rate)
    layer = keras.layers.Conv2DTranspose(use_bias=False, dtype="float32", **args)
    layer.build(x.shape)
    layer.set_weights([w])
    return args, x, w, _call(lambda: layer(x), args, x, w)


def _versions():
    import jax
    import keras
    import tensorflow as tf
    import torch

    return {"torch": torch.__version__, "jax": jax.__version__,
            "keras": f"{keras.__version__} (tensorflow {tf.__version__})"}


def main():
    import jax

    jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(SEED)
    makers = {"torch": _torch_case, "jax": _jax_case, "keras": _keras_case}
    versions = _versions()
    cases, refused, arrays = [], [], {}
    for peer, count in PER_PEER.items():
        made = 0
        while made < count:
            try:
                args, x, w, y = makers[peer](rng)
            except Refused as error:  # e.g. a negative size, or TF's rule in Keras
                refused.append(dict(peer=peer, versions=versions[peer], **error.record))
                print(f"refused by {peer}: {error}")
                continue
            i = len(cases)
            cases.append(dict(peer=peer, id=f"{peer}-{made}", versions=versions[peer], **args))
            arrays.update({f"x{i}": x, f"w{i}": w, f"y{i}": y})
            made += 1
        print(f"{peer}: {made} cases")
    np.savez_compressed(
        OUT_PATH, cases=np.array(json.dumps(cases)), refused=np.array(json.dumps(refused)), **arrays)
    print(f"wrote {os.path.normpath(OUT_PATH)}: {os.path.getsize(OUT_PATH)} bytes")


if __name__ == "__main__":
    main()
