"""Stage 1's translation: SQLite gold → PostgreSQL / MySQL / DuckDB / Oracle, kept only when verified.

Translation is sqlglot with the database's schema (so it can qualify columns and type
expressions: integer division, text-vs-number comparisons) plus small named rewrites for what
sqlglot leaves (`rewrites`: pure functions over the sqlglot tree; each engine's class declares
the ones it needs and the SQL text they write for it).
A translation counts only when it runs on the migrated database and returns the SQLite
result under the one comparator; ties under ORDER BY … LIMIT are recognised, not loosened
away (`verify`). A failing translation goes to an LLM that sees the error (`repair`).
"""

from __future__ import annotations

from exesql_ray.translate.candidates import (Translation, rule_translations, translate_rules, translation_candidates,
                                             transpile_plain)
from exesql_ray.translate.repair import TRANSLATION_FIELDS, OpenAICompatible, translate_example
from exesql_ray.translate.rewrites import REWRITES, Context, Rewrite
from exesql_ray.translate.verify import tie_probes, verify

__all__ = ["Translation", "rule_translations", "translate_rules", "translation_candidates",
           "transpile_plain", "TRANSLATION_FIELDS", "OpenAICompatible", "translate_example", "REWRITES", "Context",
           "Rewrite", "tie_probes", "verify"]
