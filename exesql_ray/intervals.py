"""95% confidence intervals for execution accuracy and for the gain between two models.

A share (EX of one model on n questions) gets Wilson's score interval, which stays inside
[0, 1] and behaves at 0 and 1, where the normal approximation does not. A gain (EX of model B
minus EX of model A on the same questions) gets a paired bootstrap: questions are resampled
with replacement and both models' outcomes on each drawn question move together, so the
interval reflects only the questions on which the two disagree. A gain is "beyond its
interval" when the interval excludes 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

Z95 = 1.959963984540054


def wilson(passed: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of passed / n; (0, 1) when n is 0."""
    if n == 0:
        return 0.0, 1.0
    p = passed / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denom = 1 + z * z / n
    return max(0.0, (centre - half) / denom), min(1.0, (centre + half) / denom)


def paired_bootstrap(before: Mapping[str, bool], after: Mapping[str, bool], reps: int = 10_000,
                     seed: int = 0, level: float = 0.95) -> dict:
    """Gain of `after` over `before` ({question id: passed}) on the questions both judged:
    {"n", "gain", "lo", "hi", "beyond"} with the percentile interval of `reps` resamples."""
    ids = sorted(set(before) & set(after))
    n = len(ids)
    if n == 0:
        return {"n": 0, "gain": None, "lo": None, "hi": None, "beyond": False}
    diffs = [int(bool(after[i])) - int(bool(before[i])) for i in ids]
    gain = sum(diffs) / n
    # only the questions on which the models disagree move a resampled mean: the counts of
    # +1 and -1 questions among n draws are multinomial, the same distribution as resampling
    # the list itself, in one vectorised draw
    import numpy as np

    up, down = diffs.count(1), diffs.count(-1)
    counts = np.random.default_rng(seed).multinomial(n, [up / n, down / n, (n - up - down) / n], size=reps)
    means = ((counts[:, 0] - counts[:, 1]) / n).tolist()
    means.sort()
    tail = (1 - level) / 2
    lo = means[int(math.floor(tail * (reps - 1)))]
    hi = means[int(math.ceil((1 - tail) * (reps - 1)))]
    return {"n": n, "gain": round(gain, 4), "lo": round(lo, 4), "hi": round(hi, 4), "beyond": lo > 0 or hi < 0}
