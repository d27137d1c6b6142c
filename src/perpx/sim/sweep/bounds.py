"""Exact binomial (Clopper-Pearson) bounds: what a number of seeds can and cannot support.

A sweep answers "in at least 99% of seeds" from a finite number of seeds. ``k`` of ``n`` seeds
meeting a condition says the true share ``p`` is, with confidence ``1 - alpha``, at least the
one-sided Clopper-Pearson lower bound ``Beta(alpha; k, n - k + 1)`` (0 when ``k = 0``); the
failure rate is at most one minus it. The bound is exact (it never claims more confidence than
the binomial gives), unlike the normal approximation, which fails at shares near 0 and 1, the
ones a risk committee asks about.

Invariant: ``share_lower_bound(k, n) <= k / n``, and a claim "at least ``share``" is *supported*
only when the lower bound reaches ``share``. With every seed meeting the condition, the bound is
``alpha ** (1 / n)``; :func:`seeds_needed` is the fewest seeds, all meeting it, that support a share
(299 for 99% at 95% confidence; 6 of 6 support only 60.7%, a failure rate up to 39.3%).
"""

from __future__ import annotations

import math

CONFIDENCE = 0.95
"""Confidence of every bound a sweep states (one-sided)."""


def share_lower_bound(met: int, seeds: int, confidence: float = CONFIDENCE) -> float:
    """One-sided Clopper-Pearson lower bound on the share of seeds meeting a condition.

    Raises
    ------
    ValueError
        If ``met`` is not within ``0..seeds`` or ``confidence`` not within (0, 1).
    """
    _check(met, seeds, confidence)
    if met == 0:
        return 0.0
    from scipy.stats import beta

    return float(beta.ppf(1.0 - confidence, met, seeds - met + 1))


def share_upper_bound(met: int, seeds: int, confidence: float = CONFIDENCE) -> float:
    """One-sided Clopper-Pearson upper bound on the share (1 when every seed met it)."""
    _check(met, seeds, confidence)
    if met == seeds:
        return 1.0
    from scipy.stats import beta

    return float(beta.ppf(confidence, met + 1, seeds - met))


def seeds_needed(share: float, confidence: float = CONFIDENCE) -> int:
    """The fewest seeds that, every one meeting the condition, support "at least ``share``"."""
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], was {share}")
    if share == 1:
        raise ValueError("no finite number of seeds supports a share of 100%")
    return math.ceil(math.log(1.0 - confidence) / math.log(share) - 1e-12)


def _check(met: int, seeds: int, confidence: float) -> None:
    if seeds < 1 or not 0 <= met <= seeds:
        raise ValueError(f"need 0 <= met <= seeds and seeds >= 1, got {met} of {seeds}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), was {confidence}")


__all__ = ["CONFIDENCE", "seeds_needed", "share_lower_bound", "share_upper_bound"]
