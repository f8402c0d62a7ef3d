"""Confidence intervals: Wilson for a share, paired bootstrap for a gain between two models."""

from exesql_ray.evaluate import gains
from exesql_ray.intervals import paired_bootstrap, wilson


def test_wilson_matches_known_values_and_stays_in_range():
    lo, hi = wilson(17, 99)
    assert abs(lo - 0.1101) < 1e-3 and abs(hi - 0.2579) < 1e-3  # R: prop.test-free Wilson, 17/99
    assert wilson(0, 99)[0] == 0.0 and 0.03 < wilson(0, 99)[1] < 0.04
    assert wilson(99, 99)[1] == 1.0 and wilson(0, 0) == (0.0, 1.0)


def test_paired_bootstrap_sees_a_real_gain_and_no_gain():
    n = 300
    before = {str(i): i < 30 for i in range(n)}  # 10%
    after = {str(i): i < 105 for i in range(n)}  # 35%, passing everything `before` passed
    g = paired_bootstrap(before, after)
    assert g["n"] == n and g["gain"] == 0.25 and g["beyond"]
    assert 0.19 < g["lo"] < 0.25 < g["hi"] < 0.31
    same = paired_bootstrap(before, before)
    assert same["gain"] == 0 and not same["beyond"]
    # as many questions lost as won: no gain shown, interval around 0
    swap = {str(i): (30 <= i < 60) for i in range(n)}
    s = paired_bootstrap(before, swap)
    assert s["gain"] == 0 and s["lo"] < 0 < s["hi"] and not s["beyond"]
    # only questions both judged count
    assert paired_bootstrap({"a": True}, {"b": True})["n"] == 0


def test_paired_bootstrap_is_reproducible():
    a = {str(i): i % 3 == 0 for i in range(99)}
    b = {str(i): i % 2 == 0 for i in range(99)}
    assert paired_bootstrap(a, b) == paired_bootstrap(a, b)


def test_gains_compare_each_model_with_the_base_and_the_one_before():
    def metrics(passed):
        return {"splits": {"dev": {"duckdb": {"outcomes": {str(i): int(i < passed) for i in range(100)}}}}}

    g = gains({"base": metrics(0), "iter-0": metrics(20), "iter-1": metrics(30)})["dev"]["duckdb"]
    assert set(g) == {"iter-0 vs base", "iter-1 vs base", "iter-1 vs iter-0"}
    assert g["iter-1 vs base"]["gain"] == 0.3 and g["iter-1 vs base"]["beyond"]
    assert g["iter-1 vs iter-0"]["gain"] == 0.1
