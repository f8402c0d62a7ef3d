"""Execution record → reward; D_Valid / D_Neg; pass@k; frontier questions; DPO pair mining.

Pure functions over plain rows (dicts), shared by the sampling stage, training and
evaluation. A candidate's outcome is one of:
- `pass`: it ran, and in `match` mode returned the verified gold result;
- `error`: it did not run (engine error, timeout, refused by the guard, no SQL at all);
- `wrong`: it ran but returned something else (only in `match` mode);
- `infra`: the infrastructure failed (connection lost): neither valid nor negative.

A *frontier* question has at least one passing and one failing sample: the only kind a small
model's feedback stages can learn from (all-fail gives no right answer of its own, all-pass
nothing to correct), so rejection-sampled SFT weights them up and GRPO trains on them.
"""

from __future__ import annotations

import math
import random
import zlib
from collections import defaultdict

from exesql_ray.engines.sqltext import cache_key

OUTCOMES = ("pass", "error", "wrong", "infra")


def reward_mode(setting: str, gold_sql: str | None) -> str:
    """`auto` compares results where a verified gold query exists, else only asks that it runs."""
    if setting == "auto":
        return "match" if gold_sql else "exec"
    if setting == "match" and not gold_sql:
        return "exec"  # nothing to compare with; the summary counts these per engine
    return setting


def outcome(rec: dict, mode: str) -> str:
    status = rec.get("status")
    if status == "infra_error":
        return "infra"
    if status != "ok":
        return "error"
    if mode == "exec":
        return "pass"
    if rec.get("match") is None:  # gold did not run here: judge the candidate by running alone
        return "pass"
    return "pass" if rec["match"] else "wrong"


def score(rows: list[dict]) -> list[dict]:
    """Adds `outcome` and `reward` (1.0 pass, 0.0 otherwise) to each candidate row."""
    for r in rows:
        r["outcome"] = outcome(r, r.get("reward_mode") or "exec")
        r["reward"] = 1.0 if r["outcome"] == "pass" else 0.0
    return rows


def _dedupe_key(r: dict) -> tuple:
    return r["engine"], r["question_id"], cache_key(r["sql"] or "", r["engine"])


def split_valid_neg(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """(D_Valid, D_Neg): passing and failing candidates, each distinct query once per question
    and engine (the first sample of it kept); infra failures are in neither."""
    seen: set[tuple] = set()
    valid, neg = [], []
    for r in rows:
        if r["outcome"] == "infra":
            continue
        if r["outcome"] == "error" and not (r["sql"] or "").strip():
            key = (r["engine"], r["question_id"], "")  # every empty answer is the same negative
        else:
            key = _dedupe_key(r)
        if key in seen:
            continue
        seen.add(key)
        (valid if r["outcome"] == "pass" else neg).append(r)
    return valid, neg


# GRPO's reward per outcome (Arctic-Text2SQL-R1's shape): a right result 1, a query that
# runs 0.1 (the syntax is learnt before the semantics), one that fails 0. `infra` has none:
# the machine, not the SQL, failed, and TRL leaves a None reward out of the advantage.
GRPO_REWARD = {"pass": 1.0, "wrong": 0.1, "error": 0.0, "infra": None}


def grpo_reward(rec: dict, mode: str) -> float | None:
    """The GRPO reward of one execution record judged in `mode` (match or exec)."""
    return GRPO_REWARD[outcome(rec, mode)]


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased estimate of pass@k from n samples of which c passed (Chen et al. 2021):
    1 - C(n-c, k) / C(n, k), the chance that k of the n drawn without replacement hold a pass."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_counts(rows: list[dict]) -> dict[tuple, tuple[int, int]]:
    """(engine, question_id) → (passing samples, judged samples); infra failures not judged."""
    per_q: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        if r["outcome"] == "infra":
            continue
        c = per_q[(r["engine"], r["question_id"])]
        c[0] += r["outcome"] == "pass"
        c[1] += 1
    return {k: (c, n) for k, (c, n) in per_q.items()}


def is_frontier(passed: int, judged: int) -> bool:
    return 0 < passed < judged


def pass_at(rows: list[dict], ks: tuple[int, ...] = ()) -> dict[str, dict]:
    """Per engine: questions, pass@1 (mean share of passing samples: the unbiased estimate from
    N samples), pass@N (share of questions with any passing sample), pass@k for each k in `ks`
    up to N (unbiased estimator; `pass_at_k`: {k: x}), and frontier_share (questions with a
    passing and a failing sample)."""
    out: dict[str, dict] = {}
    for (engine, _), (ok, n) in pass_counts(rows).items():
        e = out.setdefault(engine, {"questions": 0, "_p1": 0.0, "_pn": 0, "_front": 0, "_k": defaultdict(float),
                                    "_n": n})
        e["questions"] += 1
        e["_p1"] += ok / n
        e["_pn"] += ok > 0
        e["_front"] += is_frontier(ok, n)
        e["_n"] = min(e["_n"], n)
        for k in ks:
            if k <= n:
                e["_k"][k] += pass_at_k(n, ok, k)
    for e in out.values():
        q = e["questions"]
        e["pass@1"] = round(e.pop("_p1") / q, 4)
        e["pass@N"] = round(e.pop("_pn") / q, 4)
        e["frontier_share"] = round(e.pop("_front") / q, 4)
        at_k, n = e.pop("_k"), e.pop("_n")
        if ks:
            e["pass_at_k"] = {k: round(at_k[k] / q, 4) for k in ks if k <= n}
    return out


def runs_but_wrong_share(rows: list[dict]) -> float | None:
    """Of the candidates that run and have a verified gold to compare with, the share whose
    result differs from it: how often the paper's reward ("the query runs") accepts a wrong
    answer into D_Valid. None when no such candidate."""
    judged = [r for r in rows if r.get("status") == "ok" and r.get("match") is not None]
    return round(sum(r["match"] is False for r in judged) / len(judged), 4) if judged else None


def valid_for_sft(valid: list[dict], counts: dict[tuple, tuple[int, int]], per_frontier: int,
                  per_solved: int) -> list[dict]:
    """Rejection-sampled SFT rows weighted toward the frontier: up to `per_frontier` distinct
    passing queries of a question the model sometimes gets wrong, `per_solved` of one it always
    gets right (0: none; it has nothing left to learn there, and more of its own right answers
    only narrow what it samples). `valid` is D_Valid in sample order (distinct per question)."""
    taken: dict[tuple, int] = defaultdict(int)
    out = []
    for r in valid:
        key = (r["engine"], r["question_id"])
        passed, judged = counts.get(key, (1, 1))
        cap = per_frontier if is_frontier(passed, judged) else per_solved
        if taken[key] < cap:
            taken[key] += 1
            out.append(r)
    return out


def _answer_text(r: dict) -> str:
    """Both sides in the same form (the query in a code block), so DPO learns the SQL and not
    the formatting; a completion with no SQL in it stays as the model wrote it."""
    from exesql_ray.prompts import sql_answer

    return sql_answer(r["sql"]) if (r["sql"] or "").strip() else (r.get("completion") or "")


CLAUSES = ("JOIN", "WHERE", "GROUP_BY", "HAVING", "ORDER_BY", "LIMIT")


def clause_count(sql: str, dialect: str | None = None) -> int:
    """The query's JOIN, WHERE, GROUP BY, HAVING, ORDER BY and LIMIT keywords (sqlglot's
    tokenizer: a keyword inside a string or a quoted name is not one); -1 when it does not
    tokenize."""
    from sqlglot.dialects.dialect import Dialect
    from sqlglot.errors import TokenError
    from sqlglot.tokens import TokenType

    kinds = {getattr(TokenType, c) for c in CLAUSES}
    try:
        return sum(t.token_type in kinds for t in Dialect.get_or_raise(dialect).tokenize(sql))
    except TokenError:
        return -1


def mine_pairs(valid: list[dict], neg: list[dict], *, gold: dict[tuple, str] | None = None,
               max_pairs_per_question: int = 4, seed: int = 0, same_clauses: bool = False,
               dialect: str | None = None) -> list[dict]:
    """DPO rows `prompt, chosen, rejected, rejected_kind` from candidates of the same question.

    Negatives alternate between `error` (does not run) and `wrong` (runs, wrong result) so
    neither kind dominates, at most `max_pairs_per_question` per question; chosen answers are
    cycled so each passing query is used. `gold` ((engine, question_id) → verified SQL) gives
    the chosen side for questions where no sample passed (a model that cannot yet answer still
    learns what it should have written); None uses sampled passes only. `same_clauses`: each
    rejected answer goes with a chosen one of as many clauses (`clause_count` in `dialect`),
    and one with no such partner is passed over for the next.
    """
    from exesql_ray.prompts import extract_sql, sql_answer

    by_q: dict[tuple, dict] = defaultdict(lambda: {"valid": [], "error": [], "wrong": [], "prompt": None})
    for r in valid:
        q = by_q[(r["engine"], r["question_id"])]
        q["valid"].append(sql_answer(r["sql"]))
        q["prompt"] = r["prompt"]
    for r in neg:
        q = by_q[(r["engine"], r["question_id"])]
        q[r["outcome"]].append(r)
        q["prompt"] = q["prompt"] or r["prompt"]
    pairs = []
    for (engine, qid), q in sorted(by_q.items()):
        chosen = list(q["valid"])
        if not chosen and gold and gold.get((engine, qid)):
            chosen = [sql_answer(gold[(engine, qid)])]
        if not chosen or not (q["error"] or q["wrong"]):
            continue
        rng = random.Random(zlib.crc32(f"{seed}/{engine}/{qid}".encode()))
        kinds = {k: rng.sample(q[k], len(q[k])) for k in ("error", "wrong")}
        order = ["wrong", "error"] if rng.random() < 0.5 else ["error", "wrong"]
        shape = {c: clause_count(extract_sql(c), dialect) for c in chosen} if same_clauses else {}
        picked = []  # (rejected candidate, its chosen answer)
        while len(picked) < max_pairs_per_question and (kinds["error"] or kinds["wrong"]):
            for k in order:
                if kinds[k] and len(picked) < max_pairs_per_question:
                    r = kinds[k].pop()
                    partners = ([c for c in chosen if shape[c] == clause_count(r["sql"] or "", dialect)]
                                if same_clauses else chosen)
                    if partners:
                        picked.append((r, partners[len(picked) % len(partners)]))
        for r, c in picked:
            pairs.append({"prompt": q["prompt"], "chosen": c,
                          "rejected": _answer_text(r), "rejected_kind": r["outcome"],
                          "engine": engine, "question_id": qid, "chosen_from": "sample" if q["valid"] else "gold"})
    return pairs
