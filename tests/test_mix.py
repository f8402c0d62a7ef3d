"""Dialect mixes (exesql_ray/train/mix.py): every arm holds the tokens it claims, at the mixed
arm's budget; the rows train in the order their phases give (train.sft.rows_from)."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from transformers import AutoTokenizer

from exesql_ray.config import load_config
from exesql_ray.errors import UserError
from exesql_ray.train.data import given_rows, phased_order, sft_rows
from exesql_ray.train.mix import MIXES, build_arms, hold_out_arm, rotated

ENGINES = ["duckdb", "postgres", "mysql"]


def _translations() -> dict[str, list[dict]]:
    """60 questions in 3 dialects of different lengths; 6 have no verified MariaDB translation."""
    out = {}
    for e in ENGINES:
        out[e] = [{"question_id": f"q{i:02d}", "engine": e,
                   "prompt": f"-- {e} schema: t(a, b)\nQuestion {i}: " + "how many rows are there " * (i % 7),
                   "completion": f"```sql\nSELECT count(*) FROM t WHERE a > {i}" + " AND b < 3" * (i % 4)
                                 + ("::int" if e == "postgres" else "") + "\n```"}
                  for i in range(60) if not (e == "mysql" and i % 10 == 0)]
    return out


@pytest.fixture(scope="module")
def count(tiny):
    tok = AutoTokenizer.from_pretrained(str(tiny))

    def tokens(row):
        text = tok.apply_chat_template([{"role": "user", "content": row["prompt"]},
                                        {"role": "assistant", "content": row["completion"]}], tokenize=False)
        return len(tok(text, add_special_tokens=False)["input_ids"])

    return tokens


def test_every_arm_holds_the_tokens_it_claims_at_the_mixed_budget(count):
    rows = _translations()
    budget = build_arms(rows, "mixed", ENGINES, count)[0].tokens
    longest = max(count(r) for part in rows.values() for r in part)
    seen = {}
    for mix in MIXES:
        for arm in build_arms(rows, mix, ENGINES, count, seed=3):
            assert arm.tokens == sum(count(r) for r in arm.rows), arm.name
            assert budget - longest < arm.tokens <= budget, arm.name
            seen[arm.name] = arm
    assert sorted(seen) == ["mixed", "replay", "single-duckdb", "single-mysql", "single-postgres"]
    # mixed: each question once, the dialects rotated (a question without MariaDB takes the next)
    mixed = seen["mixed"]
    assert sorted(r["question_id"] for r in mixed.rows) == [f"q{i:02d}" for i in range(60)]
    assert {r["engine"] for r in mixed.rows} == set(ENGINES)
    assert sorted((r["question_id"], r["engine"]) for r in mixed.rows) == [
        (r["question_id"], r["engine"]) for r in rotated(rows, ENGINES)]
    assert ("q00", "mysql") not in {(r["question_id"], r["engine"]) for r in mixed.rows}
    for e in ENGINES:
        assert {r["engine"] for r in seen[f"single-{e}"].rows} == {e}
    # replay: the phases in order, each phase's new rows in its dialect, the rest replayed earlier rows
    replay = seen["replay"]
    phases = [r["phase"] for r in replay.rows]
    assert phases == sorted(phases) and set(phases) == {0, 1, 2}
    first = {(r["question_id"], r["engine"]) for r in replay.rows if r["phase"] == 0}
    assert {r["engine"] for r in replay.rows if r["phase"] == 0} == {"duckdb"}
    later = [r for r in replay.rows if r["phase"] == 1 and r["engine"] != "postgres"]
    assert later and all((r["question_id"], r["engine"]) in first for r in later)


def test_a_held_out_dialect_is_never_trained_on(count):
    rows = _translations()
    budget = build_arms(rows, "mixed", ENGINES, count)[0].tokens
    arm = hold_out_arm(rows, "duckdb", ENGINES, count)
    assert arm.name == "hold-out-duckdb" and arm.engines == ["postgres", "mysql"]
    assert {r["engine"] for r in arm.rows} == {"postgres", "mysql"}
    assert arm.tokens == sum(count(r) for r in arm.rows)
    assert budget - max(count(r) for r in arm.rows) < arm.tokens <= budget
    with pytest.raises(ValueError, match="sqlite"):
        hold_out_arm(rows, "sqlite", ENGINES, count)


def test_phases_train_in_order_and_each_is_shuffled():
    phases = [2, 0, 1, 0, 2, 1, 0, 1, 2, 0]
    order = phased_order(phases, seed=1)
    assert sorted(order) == list(range(10))
    assert [phases[i] for i in order] == sorted(phases)
    assert order != phased_order(phases, seed=2) or order != sorted(order)


def test_rows_from_replaces_the_runs_own_rows_and_names_a_bad_file(tmp_path):
    good = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist([{"prompt": "p1", "completion": "c1", "phase": 0, "engine": "duckdb"},
                                         {"prompt": "p2", "completion": "c2", "phase": 1, "engine": "mysql"}]), good)
    cfg = load_config("configs/quickstart.yaml", [f"run_dir={tmp_path / 'run'}", f"train.sft.rows_from={good}"])
    rows, counts = sft_rows(cfg, 0)
    assert [(r["prompt"], r["completion"], r["phase"]) for r in rows] == [("p1", "c1", 0), ("p2", "c2", 1)]
    assert counts["rows_from"] == 2
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist([{"prompt": "p1"}]), bad)
    with pytest.raises(UserError, match=r"train.sft.rows_from: .*bad.parquet has no column completion"):
        given_rows(bad)
    (tmp_path / "broken.parquet").write_text("not parquet")
    with pytest.raises(UserError, match=r"train.sft.rows_from: .*broken.parquet"):
        given_rows(tmp_path / "broken.parquet")
