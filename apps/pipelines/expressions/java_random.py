"""java.util.Random's generator, bit for bit: the same seed gives the numbers a JVM gives.

A 48-bit linear congruential generator (Knuth, TAOCP 3.2.1) with the multiplier, increment, seed scrambling
and the derivations of ``nextInt``, ``nextInt(bound)``, ``nextLong``, ``nextDouble``, ``nextFloat``,
``nextBoolean`` and ``nextGaussian`` (the polar method, with its cached second value) that the class's
documentation specifies. An expression such as ``${new java.util.Random(42).nextInt(10)}`` thus gives what
it gives in Spinnaker. Without a seed the generator starts from an unpredictable one, as Java's does.
"""

from __future__ import annotations

import math
import secrets

MULTIPLIER = 0x5DEECE66D
ADDEND = 0xB
MASK = (1 << 48) - 1


def _int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def _int64(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


class JavaGenerator:
    """The state of one java.util.Random."""

    def __init__(self, seed: int | None = None):
        self.seed = ((secrets.randbits(64) if seed is None else seed) ^ MULTIPLIER) & MASK
        self.next_gaussian: float | None = None

    def next(self, bits: int) -> int:
        self.seed = (self.seed * MULTIPLIER + ADDEND) & MASK
        return _int32(self.seed >> (48 - bits))

    def next_int(self, bound: int | None = None) -> int:
        if bound is None:
            return self.next(32)
        if bound <= 0:
            raise ValueError("bound must be positive")
        if bound & (bound - 1) == 0:  # a power of two: the high bits
            return _int32((bound * self.next(31)) >> 31)
        while True:
            bits = self.next(31)
            value = bits % bound
            if bits - value + (bound - 1) < 1 << 31:  # Java's int did not overflow: no bias
                return value

    def next_long(self) -> int:
        return _int64((self.next(32) << 32) + self.next(32))

    def next_double(self) -> float:
        return ((self.next(26) << 27) + self.next(27)) * 2.0**-53

    def next_float(self) -> float:
        return self.next(24) / float(1 << 24)

    def next_boolean(self) -> bool:
        return self.next(1) != 0

    def next_gaussian_value(self) -> float:
        if self.next_gaussian is not None:
            value, self.next_gaussian = self.next_gaussian, None
            return value
        while True:
            v1, v2 = 2 * self.next_double() - 1, 2 * self.next_double() - 1
            s = v1 * v1 + v2 * v2
            if 0 < s < 1:
                break
        multiplier = math.sqrt(-2 * math.log(s) / s)
        self.next_gaussian = v2 * multiplier
        return v1 * multiplier
