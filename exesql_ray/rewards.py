"""Execution record → reward; D_Valid / D_Neg; pass@k; DPO pair mining.

Pure functions over plain rows (dicts), shared by the sampling stage, training and
evaluation. A candidate's outcome is one of:
- `pass`: it ran, and in `match` mode returned the verified gold result;
- `error`: it did not run (engine error, timeout, refused by the guard, no SQL at all);
- `wrong`: it ran but returned something else (only in `match` mode);
- `infra`: the infrastructure failed (connection lost): neither valid nor negative.
"""

from __future__ import annotations

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


def pass_at(rows: list[dict]) -> dict[str, dict]:
    """Per engine: questions, pass@1 (mean share of passing samples: the unbiased estimate from
    N samples) and pass@N (share of questions with any passing sample)."""
    per_q: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        if r["outcome"] == "infra":
            continue
        c = per_q[(r["engine"], r["question_id"])]
        c[0] += r["outcome"] == "pass"
        c[1] += 1
    out: dict[str, dict] = {}
    for (engine, _), (ok, n) in per_q.items():
        e = out.setdefault(engine, {"questions": 0, "_p1": 0.0, "_pn": 0})
        e["questions"] += 1
        e["_p1"] += ok / n
        e["_pn"] += ok > 0
    for e in out.values():
        q = e["questions"]
        e["pass@1"] = round(e.pop("_p1") / q, 4)
        e["pass@N"] = round(e.pop("_pn") / q, 4)
    return out


def _answer_text(r: dict) -> str:
    """Both sides in the same form (the query in a code block), so DPO learns the SQL and not
    the formatting; a completion with no SQL in it stays as the model wrote it."""
    from exesql_ray.prompts import sql_answer

    return sql_answer(r["sql"]) if (r["sql"] or "").strip() else (r.get("completion") or "")


def mine_pairs(valid: list[dict], neg: list[dict], *, gold: dict[tuple, str] | None = None,
               max_pairs_per_question: int = 4, seed: int = 0) -> list[dict]:
    """DPO rows `prompt, chosen, rejected, rejected_kind` from candidates of the same question.

    Negatives alternate between `error` (does not run) and `wrong` (runs, wrong result) so
    neither kind dominates, at most `max_pairs_per_question` per question; chosen answers are
    cycled so each passing query is used. `gold` ((engine, question_id) → verified SQL) gives
    the chosen side for questions where no sample passed (a model that cannot yet answer still
    learns what it should have written); None uses sampled passes only.
    """
    from exesql_ray.prompts import sql_answer

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
        picked = []
        while len(picked) < max_pairs_per_question and (kinds["error"] or kinds["wrong"]):
            for k in order:
                if kinds[k] and len(picked) < max_pairs_per_question:
                    picked.append(kinds[k].pop())
        for i, r in enumerate(picked):
            pairs.append({"prompt": q["prompt"], "chosen": chosen[i % len(chosen)],
                          "rejected": _answer_text(r), "rejected_kind": r["outcome"],
                          "engine": engine, "question_id": qid, "chosen_from": "sample" if q["valid"] else "gold"})
    return pairs
