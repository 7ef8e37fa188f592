"""Always-valid tests on counts: may be looked at after every scrape, and stopped at any time,
without inflating their error rate.

**The test.** Requests after a deploy arrive as Bernoulli trials (an error or not; slower than a
threshold or not; a failed scrape or not). The null hypothesis is that their rate ``p`` is at most
``p0`` (a null rate built from the baseline, see :func:`null_rate`). The evidence against it after
``n`` trials with ``s`` events is the mixture likelihood ratio

    E_n = ∫ L(p) / L(p0) dπ(p),   L(p) = p^s (1 - p)^(n - s),   π uniform on [p0, 1],

Robbins' mixture sequential probability ratio test (H. Robbins, "Statistical methods related to
the law of the iterated logarithm", Ann. Math. Statist. 41, 1970), the mSPRT of Johari, Koomen,
Pekelis and Walsh ("Always valid inference: continuous monitoring of A/B tests", Operations
Research 70, 2022) with a conjugate (beta) mixture. For every alternative ``p >= p0`` each trial
multiplies ``L(p) / L(p0)`` by a factor whose mean is at most 1 whenever the true rate is at most
``p0``, so ``E_n`` is a non-negative supermartingale under the whole (one-sided) null, and Ville's
inequality gives ``P(E_n >= 1/alpha for some n) <= alpha``: ``min(1, 1/E_n)`` is an always-valid
p-value. Its closed form uses the regularized incomplete beta function (scipy.special).

**Several dimensions.** The always-valid p-values of all routes and signals go through
Benjamini–Hochberg (``scipy.stats.false_discovery_control``); on p-values that are reciprocals of
e-values this is e-BH (Wang and Ramdas, "False discovery rate control with e-values", JRSS B 84,
2022), which controls the false discovery rate under any dependence between the tests.

**The baseline is estimated.** ``p0`` is at least the baseline's one-sided upper Clopper–Pearson
bound at ``alpha / 2`` (with probability ``1 - alpha/2`` above the baseline's true rate), and at least
its estimate plus the minimum change that matters to users (:func:`null_rate`). The sequential
tests spend the other ``alpha / 2`` (Benjamini–Hochberg at ``alpha / 2``): a route whose rate did not
rise is reported with probability at most ``alpha`` (a union bound), and one error, or a rise
smaller than the minimum change, never is.

**A fixed-sample test looked at repeatedly** (the point judge, the trend's interval) spends
``alpha * 6 / (pi^2 n^2)`` at its ``n``-th real sample (:func:`spent_alpha`): the sum over all ``n`` is
``alpha``, so stopping at any sample keeps the error below ``alpha``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def upper_bound(events: float, trials: float, alpha: float) -> float:
    """One-sided ``1 - alpha`` upper Clopper–Pearson bound of a rate (1 without trials)."""
    if trials <= 0:
        return 1.0
    events = min(max(events, 0.0), trials)
    if events >= trials:
        return 1.0
    # the Beta(events + 1, trials - events) quantile (scipy.stats.beta.ppf), through the special
    # function itself: beta.ppf checks its arguments for 80 us a call, the inverse takes 2
    from scipy.special import betaincinv  # imported when first used (console/analysis/__init__.py)

    return float(betaincinv(events + 1.0, trials - events, 1.0 - alpha))


def null_rate(
    events: float, trials: float, alpha: float, *, relative: float, absolute: float, floor: float = 0.0
) -> float:
    """The rate after the deploy that is still "no regression": the larger of the baseline's upper
    bound (its uncertainty: an unchanged rate is under it with probability ``1 - alpha``) and its
    estimate raised by the minimum change that matters (``relative`` and ``absolute``); never under
    ``floor``; capped below 1."""
    bound = upper_bound(events, trials, alpha)
    estimate = events / trials if trials > 0 else 1.0
    return float(min(max(bound, estimate * (1.0 + relative), estimate + absolute, floor), 0.999))


def log_e_value(events: float, trials: float, p0: float) -> float:
    """``log E_n`` of the uniform-mixture test of ``rate <= p0`` (see the module docstring)."""
    if trials <= 0:
        return 0.0
    from scipy.special import betaincc, betaln  # imported when first used (console/analysis/__init__.py)

    s, f = float(events), float(trials - events)
    # ∫_{p0}^1 p^s (1-p)^f dp = B(s+1, f+1) * (1 - I_{p0}(s+1, f+1)); the prior's density is 1 / (1 - p0)
    upper = float(betaincc(s + 1.0, f + 1.0, p0))
    if upper <= 0.0:
        return -math.inf
    log_mixture = betaln(s + 1.0, f + 1.0) + math.log(upper) - math.log(1.0 - p0)
    log_null = s * math.log(p0) + f * math.log1p(-p0)
    return float(log_mixture - log_null)


def always_valid_p(events: float, trials: float, p0: float) -> float:
    """``min(1, 1 / E_n)``."""
    log_e = log_e_value(events, trials, p0)
    return 1.0 if log_e <= 0 else float(math.exp(-log_e))


def discoveries(p_values: Sequence[float], alpha: float) -> list[bool]:
    """Which tests Benjamini–Hochberg rejects at ``alpha`` (e-BH on always-valid p-values)."""
    if not p_values:
        return []
    return [bool(a <= alpha) for a in adjusted(p_values)]


def adjusted(p_values: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values, for the reasons."""
    if not p_values:
        return []
    from scipy.stats import false_discovery_control  # imported when first used (console/analysis/__init__.py)

    return [float(a) for a in false_discovery_control(np.asarray(p_values, dtype=float), method="bh")]


def spent_alpha(alpha: float, n: int) -> float:
    """The share of ``alpha`` a fixed-sample test may use at its ``n``-th real sample (n >= 1)."""
    return alpha * 6.0 / (math.pi**2 * max(n, 1) ** 2)


def strength(p_value: float, alpha: float) -> float:
    """How strong a significant result is, in [0, 1): 0.5 at ``p = alpha``, 0.99 from ``alpha^2``."""
    if p_value <= 0:
        return 0.99
    return float(min(0.99, max(0.0, 0.5 * math.log(1.0 / p_value) / math.log(1.0 / alpha))))
