"""Training rows from the earlier stages' files, in TRL's conversational formats.

SFT: D_Valid of iteration k (every target engine) ∪ D_Trans (the verified translations of
the sampled questions, with the same prompt the model samples from), each (prompt, answer)
once. DPO: the pairs the sampling stage mined. Rows too long for `max_length` are dropped
and counted, not truncated: a cut answer teaches a wrong query.
"""

from __future__ import annotations

import random
import zlib
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from exesql_ray.config import Config
from exesql_ray.errors import UserError
from exesql_ray.prompts import sql_answer
from exesql_ray.rewards import valid_for_sft
from exesql_ray.runs import ends_with_dpo, sample_dir
from exesql_ray.engines import SOURCE


def _read(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist() if path.is_file() else []


def sft_rows(cfg: Config, iteration: int) -> tuple[list[dict], Counter]:
    from exesql_ray.sample_stage import plan_sampling

    root = sample_dir(cfg, iteration)
    rows, seen, counts = [], set(), Counter()

    def add(prompt: str, answer: str, source: str):
        if (prompt, answer) in seen:
            counts[f"{source}_duplicate"] += 1
            return
        seen.add((prompt, answer))
        rows.append({"prompt": prompt, "completion": answer, "source": source})
        counts[source] += 1

    s = cfg.train.sft
    if s.rows_from:
        given = given_rows(Path(s.rows_from))
        return given, Counter(rows_from=len(given))
    for engine in cfg.engines.targets:
        valid = _read(root / "d_valid" / f"{engine}.parquet")
        if valid and (s.valid_per_frontier is not None or s.valid_per_solved is not None):
            counts[f"d_valid_{engine}_all"] = len(valid)
            valid = valid_for_sft(valid, _pass_counts(root / engine), s.valid_per_frontier or 10**9,
                                  10**9 if s.valid_per_solved is None else s.valid_per_solved)
        for r in valid:
            add(r["prompt"], sql_answer(r["sql"]), "d_valid")
    if s.with_translations:
        # the verified translations of the split, also when sampling took a subset
        # (sample.max_questions), or of that subset (train.sft.translations: sampled), or a
        # seeded share of them (replay); the prompts are the ones the model samples from
        full = cfg.model_copy(deep=True)
        samples = ends_with_dpo(cfg, iteration)
        if not (s.translations == "sampled" and samples):
            full.sample.max_questions = None
        plan = plan_sampling(full, iteration)
        keep = s.translation_engines_per_question
        replay = s.translation_replay if s.translations == "replay" and samples else None
        for shard in plan.shards:
            for q in shard.questions:
                if q["gold_from"] != "verified" or (keep is not None and not _taught_on(q, plan.engines, keep)):
                    continue
                if replay is not None and not _replayed(q, replay, cfg.seed, iteration):
                    counts["d_trans_not_replayed"] += 1
                    continue
                add(q["prompt"], sql_answer(q["gold_sql"]), "d_trans")
    if not rows:
        raise UserError(f"SFT iteration {iteration}: no training rows: {root}/d_valid holds no passing candidates "
                        f"and no verified translations were found under {Path(cfg.run_dir) / 'd_trans'} "
                        "(run `exesql-ray translate` and `exesql-ray sample` first)")
    return rows, counts


def given_rows(path: Path) -> list[dict]:
    """train.sft.rows_from: prompt, completion and an optional phase per row, in file order."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as e:
        raise UserError(f"train.sft.rows_from: {path}: {str(e).splitlines()[0]}") from None
    missing = {"prompt", "completion"} - set(table.column_names)
    if missing:
        raise UserError(f"train.sft.rows_from: {path} has no column {', '.join(sorted(missing))}")
    cols = [c for c in ("prompt", "completion", "phase") if c in table.column_names]
    rows = [{**r, "source": "rows_from"} for r in table.select(cols).to_pylist()]
    if not rows:
        raise UserError(f"train.sft.rows_from: {path} holds no rows")
    return rows


def _pass_counts(shards: Path) -> dict[tuple, tuple[int, int]]:
    """Passing and judged samples per question from one engine's shards of the round."""
    from exesql_ray.rewards import pass_counts

    files = sorted(shards.glob("part-*.parquet"))
    if not files:
        return {}
    cols = ["engine", "question_id", "outcome"]
    return pass_counts(pa.concat_tables([pq.read_table(f, columns=cols) for f in files]).to_pylist())


def _replayed(q: dict, share: float, seed: int, iteration: int) -> bool:
    """Whether a translation is among this iteration's replayed share (seeded by question and
    engine, a different draw each iteration)."""
    h = zlib.crc32(f"{seed}/{iteration}/replay/{q['engine']}/{q['question_id']}".encode())
    return h / 2**32 < share


def _taught_on(q: dict, engines: list[str], k: int) -> bool:
    """Whether question q's translation for q["engine"] is one of the k its id picks: a
    rotation over the engines, the same in every iteration and on every machine."""
    start = zlib.crc32(q["question_id"].encode()) % len(engines)
    return q["engine"] in [engines[(start + i) % len(engines)] for i in range(min(k, len(engines)))]


def dpo_rows(cfg: Config, iteration: int) -> tuple[list[dict], Counter]:
    root = sample_dir(cfg, iteration) / "dpo_pairs"
    rows = [r for e in cfg.engines.targets for r in _read(root / f"{e}.parquet")]
    if not rows:
        raise UserError(f"DPO iteration {iteration}: no pairs under {root} (run `exesql-ray sample --iteration "
                        f"{iteration}` first; a question needs a passing and a failing answer)")
    cap = cfg.train.dpo.max_pairs
    if cap and len(rows) > cap:
        rows = cap_pairs(rows, cap, cfg.engines.targets, f"{cfg.seed}/{iteration}/dpo")
    return rows, Counter(r["rejected_kind"] for r in rows) + Counter(f"chosen_from_{r['chosen_from']}" for r in rows)


def cap_pairs(rows: list[dict], cap: int, engines: list[str], seed: str) -> list[dict]:
    """A seeded subset of `cap` pairs, an equal share per engine (what one engine does not use
    goes to the others), the model's own passing answers as the chosen side before the gold."""
    import random

    rng = random.Random(seed)
    by_engine = {e: [r for r in rows if r["engine"] == e] for e in engines}
    for e, part in by_engine.items():
        rng.shuffle(part)
        part.sort(key=lambda r: r.get("chosen_from") != "sample")  # stable: own samples first, shuffled
    take = {e: 0 for e in engines}
    left = cap
    while left > 0:
        open_engines = [e for e in engines if take[e] < len(by_engine[e])]
        if not open_engines:
            break
        share = max(1, left // len(open_engines))
        for e in open_engines:
            more = min(share, len(by_engine[e]) - take[e], left)
            take[e] += more
            left -= more
    return [r for e in engines for r in by_engine[e][:take[e]]]


GRPO_COLUMNS = ("engine", "question_id", "db_id", "gold_sql", "reward_mode")


def grpo_rows(cfg: Config, iteration: int) -> tuple[list[dict], Counter]:
    """GRPO's questions: the round's frontier questions per engine (train.grpo.questions), each
    with what its reward needs (engine, database, verified gold, reward mode)."""
    import random

    from exesql_ray.rewards import is_frontier

    g = cfg.train.grpo
    if SOURCE in cfg.engines.targets:
        raise UserError("train.method grpo: the sqlite target engine is not supported (its reward actor would "
                        "need the SQLite database folders); leave sqlite out of engines.targets")
    root = sample_dir(cfg, iteration)
    rows, counts = [], Counter()
    for engine in cfg.engines.targets:
        files = sorted((root / engine).glob("part-*.parquet"))
        if not files:
            continue
        cands = pa.concat_tables([pq.read_table(f) for f in files]).to_pylist()
        per_q = _pass_counts(root / engine)
        firsts = {}
        for r in cands:
            firsts.setdefault(r["question_id"], r)
        for qid, r in sorted(firsts.items()):
            passed, judged = per_q.get((engine, qid), (0, 0))
            kind = "frontier" if is_frontier(passed, judged) else "solved" if judged and passed == judged else "unsolved"
            counts[f"{engine}_{kind}"] += 1
            if g.questions == "frontier" and kind != "frontier":
                continue
            rows.append({"prompt": r["prompt"], **{k: r[k] for k in GRPO_COLUMNS}})
    if not rows:
        raise UserError(f"GRPO iteration {iteration}: no {g.questions} questions under {root} (run `exesql-ray "
                        f"sample --iteration {iteration}` first; a frontier question has a passing and a failing "
                        "sample)")
    if g.max_questions and len(rows) > g.max_questions:
        rows = random.Random(f"{cfg.seed}/{iteration}/grpo").sample(rows, g.max_questions)
    counts["questions"] = len(rows)
    return rows, counts


def conversational(row: dict, stage: str) -> dict:
    user = [{"role": "user", "content": row["prompt"]}]
    if stage == "grpo":
        return {"prompt": user, **{k: row[k] for k in GRPO_COLUMNS}}
    if stage == "sft":
        return {"prompt": user, "completion": [{"role": "assistant", "content": row["completion"]}]}
    return {"prompt": user, "chosen": [{"role": "assistant", "content": row["chosen"]}],
            "rejected": [{"role": "assistant", "content": row["rejected"]}]}


def within_length(rows: list[dict], tokenizer, max_length: int, stage: str) -> tuple[list[dict], int]:
    """Rows whose prompt + longest answer fit in max_length tokens under the chat template."""
    keep = []
    for r in rows:
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": r["prompt"]}], tokenize=False,
                                               add_generation_prompt=True)
        answers = {"sft": lambda: [r["completion"]], "dpo": lambda: [r["chosen"], r["rejected"]],
                   "grpo": lambda: []}[stage]()
        # + 4: the template's end-of-turn tokens after the answer
        longest = max((len(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers), default=0) + 4
        if len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) + longest <= max_length:
            keep.append(r)
    return keep, len(rows) - len(keep)


def phased_order(phases: list[int], seed: int) -> list[int]:
    """Row indices phase by phase (phases in ascending order), each phase's rows shuffled."""
    rng = random.Random(seed)
    order = []
    for p in sorted(set(phases)):
        part = [i for i, x in enumerate(phases) if x == p]
        rng.shuffle(part)
        order.extend(part)
    return order


def length_grouped_order(lengths: list[int], batch_size: int, seed: int) -> list[int]:
    """Row indices in batches of similar length, the batches in a seeded random order.

    A batch is padded to its longest row, and Spider prompts run from about 100 to 1,000
    tokens: in random batches padding was 40-46% of what SFT and DPO computed. Rows sorted by
    length (ties broken at random) and cut into batches leave little padding; shuffling the
    batches keeps the order of training random. transformers' LengthGroupedSampler is not
    used: on a dataset smaller than its 50-batch megabatch it sorts every batch longest first,
    which makes an epoch a long-to-short curriculum.
    """
    rng = random.Random(seed)
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], rng.random()))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    # a short batch stays last: the dataloader cuts the order every batch_size rows, and one
    # in the middle would shift every cut after it
    short = [batches.pop()] if batches and len(batches[-1]) < batch_size else []
    rng.shuffle(batches)
    return [i for b in batches + short for i in b]
