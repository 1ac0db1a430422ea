"""The scalar index helpers, as plain Python, against brute force."""

import itertools
import math

from numba_convt._geometry import first_tap, input_coord


def test_input_coord_is_the_definition():
    for o, k, pad, stride, dil, size in itertools.product(range(9), range(4), range(3), range(1, 4), range(1, 3), range(5)):
        sources = [i for i in range(size) if i * stride + k * dil - pad == o]
        assert input_coord(o, k, pad, stride, dil, size) == (sources[0] if sources else -1)


def test_first_tap_starts_the_phase_of_reaching_taps():
    for o, k_size, pad, stride, dil in itertools.product(range(9), range(1, 7), range(3), range(1, 5), range(1, 4)):
        step = stride // math.gcd(stride, dil)
        reaching = [k for k in range(k_size) if (o + pad - k * dil) % stride == 0]
        first = first_tap(o, k_size, pad, stride, dil, step)
        assert list(range(first, k_size, step)) == reaching
