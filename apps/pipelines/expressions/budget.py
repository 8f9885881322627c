"""Hard limits on what one evaluation may cost: CPU time, the size of the values it builds, integer sizes.

A pipeline author's expression runs in a worker shared by every application, so nothing it asks for may
take long or grow large. The evaluator checks the time cooperatively (every few nodes, against the
thread's CPU clock), and the operators that can make a value much larger than their operands — ``*`` on
strings and lists, ``+``, ``^``, inline lists and maps — check the size of their result *before*
computing it. Sizes are counted in items: a string's length, a list's or map's entries counted all the
way down (a list holding the same big list twice counts it twice, as JSON would write it), an integer's
64-bit words. Each evaluation also has a total for everything it builds.

The limits are settings (``EXPRESSION_*``, see ``cdplatform/settings.py``); :func:`limits` reads them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from apps.pipelines.expressions.errors import Refusal
from apps.pipelines.expressions.values import add, is_integer, to_text

# How many nodes the evaluator walks between two looks at the clock.
_NODES_PER_CLOCK_CHECK = 16


@dataclass(frozen=True)
class Limits:
    """The limits of one evaluation (a stage's context, a task's expressions)."""

    time_ms: int = 250  # CPU time for all the expressions of one evaluation
    max_length: int = 10_000  # characters of one expression's text
    max_value_size: int = 1_000_000  # items in any one value an expression builds
    max_total_size: int = 10_000_000  # items built by all the expressions of one evaluation
    max_integer_bits: int = 4096  # bits of an integer an expression computes


def limits() -> Limits:
    """The limits from the ``EXPRESSION_*`` settings (the defaults above outside Django)."""
    from django.conf import settings

    default = Limits()
    if not settings.configured:
        return default
    return Limits(
        time_ms=getattr(settings, "EXPRESSION_TIME_LIMIT_MS", default.time_ms),
        max_length=getattr(settings, "EXPRESSION_MAX_LENGTH", default.max_length),
        max_value_size=getattr(settings, "EXPRESSION_MAX_VALUE_SIZE", default.max_value_size),
        max_total_size=getattr(settings, "EXPRESSION_MAX_TOTAL_SIZE", default.max_total_size),
        max_integer_bits=getattr(settings, "EXPRESSION_MAX_INTEGER_BITS", default.max_integer_bits),
    )


class OverBudget(Refusal):
    """An expression asked for more time, or a bigger value, than the limits allow."""


class Budget:
    """What is left of one evaluation's limits; shared by every expression of that evaluation."""

    def __init__(self, configured: Limits | None = None):
        self.limits = configured or limits()
        self._deadline = time.thread_time() + self.limits.time_ms / 1000
        self._nodes = 0
        self._built = 0
        # Sizes of the lists and maps already measured, by id; the value is kept so its id stays unique.
        self._sizes: dict[int, tuple[Any, int]] = {}

    def tick(self) -> None:
        """Called for each node evaluated: refuse once the evaluation has used up its CPU time."""
        self._nodes += 1
        if self._nodes % _NODES_PER_CLOCK_CHECK == 0 and time.thread_time() > self._deadline:
            raise OverBudget(
                f"evaluation took more than {self.limits.time_ms} ms of CPU time (EXPRESSION_TIME_LIMIT_MS)"
            )

    def check_length(self, expression: str) -> None:
        if len(expression) > self.limits.max_length:
            raise OverBudget(expression_too_long(len(expression), self.limits.max_length))

    def size(self, value: Any) -> int:
        """The size of ``value`` in items; counting stops just past the value limit, so it costs little."""
        if isinstance(value, str):
            return len(value)
        if isinstance(value, bool) or not isinstance(value, int | list | tuple | Mapping):
            return 1
        if isinstance(value, int):
            return 1 + value.bit_length() // 64
        known = self._sizes.get(id(value))
        if known is not None:
            return known[1]
        ceiling = self.limits.max_value_size + 1
        total = 1
        for item in value.items() if isinstance(value, Mapping) else value:
            total += self.size(item)
            if total >= ceiling:
                total = ceiling
                break
        self._sizes[id(value)] = (value, total)
        return total

    def allow(self, size: int, what: str) -> None:
        """Refuse, before it is computed, a value of ``size`` items, or one that would exceed the total."""
        if size > self.limits.max_value_size:
            raise OverBudget(
                f"{what} would hold {size:,} items, more than {self.limits.max_value_size:,} "
                "(EXPRESSION_MAX_VALUE_SIZE)"
            )
        self._built += size
        if self._built > self.limits.max_total_size:
            raise OverBudget(
                f"the expressions built more than {self.limits.max_total_size:,} items in all "
                "(EXPRESSION_MAX_TOTAL_SIZE)"
            )

    def built(self, value: Any, what: str) -> Any:
        """Count a value just built (an inline list or map, a method's result) against the limits."""
        self.allow(self.size(value), what)
        return value

    def allow_bits(self, bits: int, what: str) -> None:
        if bits > self.limits.max_integer_bits:
            raise OverBudget(
                f"{what} would be an integer of about {bits:,} bits, more than {self.limits.max_integer_bits:,} "
                "(EXPRESSION_MAX_INTEGER_BITS)"
            )


def expression_too_long(length: int, limit: int) -> str:
    return f"the expression is {length:,} characters long, more than {limit:,} (EXPRESSION_MAX_LENGTH)"


# The operators whose result can be much larger than their operands, sized before they compute.


def multiply(budget: Budget, left: Any, right: Any) -> Any:
    """``*``: numbers, or a string or list repeated (``'ab' * 3``), refused before it would grow too large."""
    for sequence, count in ((left, right), (right, left)):
        if isinstance(sequence, str | list | tuple) and is_integer(count):
            budget.allow(budget.size(sequence) * max(count, 0), "the repetition")
            return left * right
    if is_integer(left) and is_integer(right):
        budget.allow_bits(left.bit_length() + right.bit_length(), "the product")
    return left * right


def power(budget: Budget, base: Any, exponent: Any) -> Any:
    """``^``: an integer power's size is estimated (bits of the base times the exponent) before computing it."""
    if is_integer(base) and is_integer(exponent) and exponent > 0 and abs(base) > 1:
        budget.allow_bits(base.bit_length() * exponent, "the power")
    elif isinstance(exponent, int | float) and abs(exponent) > budget.limits.max_integer_bits and abs(base) > 1:
        # A float power that large overflows or is 0.0 anyway; refused rather than computed.
        budget.allow_bits(int(abs(exponent)), "the power")
    return base**exponent


def concatenate(budget: Budget, left: Any, right: Any) -> Any:
    """SpEL ``+``: text joined (either side a string), lists joined, or numbers added; sized first."""
    if isinstance(left, str) or isinstance(right, str) or isinstance(left, list | tuple):
        # A list becomes its JSON next to a string: at least as long as its size in items.
        budget.allow(budget.size(left) + budget.size(right), "the concatenation")
        if isinstance(left, str) or isinstance(right, str):
            return to_text(left) + to_text(right)
    elif is_integer(left) and is_integer(right):
        budget.allow_bits(max(left.bit_length(), right.bit_length()) + 1, "the sum")
    return add(left, right)
