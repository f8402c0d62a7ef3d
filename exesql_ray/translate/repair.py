"""One example through stage 1 (`translate_example`): the candidates, then up to
`max_rounds` repair rounds by an LLM that sees the engine's error; and the LLM backends.

Backends: anything that turns prompts into completions.
- `OpenAICompatible`: any /v1/chat/completions endpoint (the paper used GPT-4o this way);
  base URL and model from the config, the key from an environment variable.
- The project's own vLLM generator actors plug in the same way (the sampling stage's
  `actors/generator.py`), as an object with `complete(prompts) -> completions`.
"""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Protocol

from exesql_ray.compare import CompareOptions
from exesql_ray.engines.base import InfraError
from exesql_ray.engines.results import Execution
from exesql_ray.errors import UserError
from exesql_ray.prompts import extract_sql, repair_prompt
from exesql_ray.schema import schema_of
from exesql_ray.translate.candidates import translation_candidates
from exesql_ray.translate.verify import verify


class RepairBackend(Protocol):
    name: str

    def complete(self, prompts: list[str]) -> list[str]: ...


class OpenAICompatible:
    """Chat completions over HTTP with the standard library (no SDK pinned to one vendor)."""

    def __init__(self, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY", timeout_s: float = 60,
                 temperature: float = 0.0, max_tokens: int = 512):
        if not base_url or not model:
            raise UserError("translate.repair: base_url and model are required for the openai backend")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.key = os.environ.get(api_key_env, "")
        self.timeout_s, self.temperature, self.max_tokens = timeout_s, temperature, max_tokens
        self.name = f"openai:{model}"

    def complete(self, prompts: list[str]) -> list[str]:
        out = []
        for p in prompts:
            body = json.dumps({"model": self.model, "messages": [{"role": "user", "content": p}],
                               "temperature": self.temperature, "max_tokens": self.max_tokens}).encode()
            req = urllib.request.Request(self.url, data=body, headers={
                "Content-Type": "application/json", **({"Authorization": f"Bearer {self.key}"} if self.key else {})})
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                data = json.load(resp)
            out.append(data["choices"][0]["message"]["content"] or "")
        return out


# ---------------------------------------------------------------- one example, with repair

TRANSLATION_FIELDS = ("id", "db_id", "dialect", "sqlite_sql", "sql", "method", "attempts", "verdict",
                      "error_class", "error", "note")


def _feedback(pred: Execution, gold: Execution, limit: int = 5) -> str:
    if pred.status != "ok":
        return f"{pred.status}: {pred.error}"
    g, p = (gold.rows or [])[:limit], (pred.rows or [])[:limit]
    return (f"It ran but returned a different result: {pred.row_count} rows, first {p!r}; "
            f"the SQLite query returns {gold.row_count} rows, first {g!r}.")


def _about_the_sql(ex: Execution, engine: str, db_id: str) -> Execution:
    """An execution that is a verdict; an engine that failed (after its retries) raises
    InfraError instead, so that no record calls a translation wrong for the server's fault."""
    if ex.status == "infra_error":
        raise InfraError(f"{engine} on {db_id}: {ex.error}")
    return ex


def translate_example(ex, engine: str, sqlite_exec, target_exec, *, backend=None, max_rounds: int = 3,
                      opts: CompareOptions = CompareOptions()) -> dict:
    """One record per (example, engine). Rules first; on error or mismatch, up to
    `max_rounds` repair rounds, each shown the schema, question, SQLite query, failing
    translation and the engine's error or a short result diff. Raises InfraError where an
    engine failed: the example then has no record (a re-run translates it)."""
    rec = {k: None for k in TRANSLATION_FIELDS}
    rec.update(id=ex.id, db_id=ex.db_id, dialect=engine, sqlite_sql=ex.sqlite_sql, attempts=0)
    run_gold = lambda q: _about_the_sql(sqlite_exec.execute_sql(ex.db_id, q), "sqlite", ex.db_id)  # noqa: E731
    run_pred = lambda q: _about_the_sql(target_exec.execute_sql(ex.db_id, q), engine, ex.db_id)  # noqa: E731
    gold = run_gold(ex.sqlite_sql)
    if gold.status != "ok":
        rec.update(verdict="gold_error", error=gold.error, error_class=gold.error_class)
        return rec
    schema = schema_of(ex.db_path)

    def judge(sql: str):
        pred = run_pred(sql)
        v, note = verify(gold, pred, ex.sqlite_sql, sql, run_gold=run_gold, run_pred=run_pred, engine=engine,
                         opts=opts)
        return pred, v, note

    # the last candidate (rules) is what repair starts from when none verifies
    for tr in translation_candidates(ex.sqlite_sql, engine, schema):
        rec.update(method=tr.method, sql=tr.sql, attempts=1)
        if tr.sql is None:
            pred, verdict, note = Execution("error", error_class="syntax", error=tr.error), "error", None
        else:
            pred, verdict, note = judge(tr.sql)
        if verdict == "verified":
            break
    current = tr.sql or ex.sqlite_sql
    rounds = 0
    while verdict != "verified" and backend is not None and rounds < max_rounds:
        rounds += 1
        prompt = repair_prompt(engine=engine, schema=schema, question=ex.question, sqlite_sql=ex.sqlite_sql,
                               failing_sql=current, feedback=_feedback(pred, gold))
        candidate = extract_sql(backend.complete([prompt])[0])
        rec["attempts"] += 1
        if not candidate:
            continue
        current = candidate
        pred, verdict, note = judge(candidate)
        rec.update(method="llm", sql=candidate)
    rec.update(verdict=verdict, note=note)
    if verdict != "verified":
        rec.update(error_class=pred.error_class if pred.status != "ok" else "mismatch",
                   error=pred.error if pred.status != "ok" else _feedback(pred, gold)[:500])
    return rec
