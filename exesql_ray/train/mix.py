"""Dialect mixes: which rows each model of a mixing arm trains on (bench/learning.py --mix,
--hold-out), written as a `train.sft.rows_from` file.

The rows are stage 1's verified translations, one per (question, engine), each with the prompt
the model samples from. Every arm trains on the same number of tokens: the `mixed` arm's, each
question once in one dialect, the dialect rotated from question to question as
`train.sft.translation_engines_per_question: 1` rotates it (iteration 0 of the pipeline).

    mixed     one model; every dialect, shuffled together
    single    one model per dialect, on that dialect's rows only
    replay    one model; the dialects one after another, a phase each, each phase a share of the
              budget; from the second phase on `replay_share` of a phase's tokens re-read rows
              of the earlier phases (rehearsal, against forgetting the first dialects)
    hold-out  one model on every dialect but one, rotated over the others

The token counts are what `count(row)` says (the chat template's tokens of prompt + answer);
an arm stops before the row that would take it past the budget, so it holds at most one row's
tokens less than the budget.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from typing import Callable

MIXES = ("single", "mixed", "replay")


@dataclass
class Arm:
    name: str  # the model's name: mixed, replay, single-<engine>, hold-out-<engine>
    engines: list[str]  # the dialects it trains on
    rows: list[dict] = field(default_factory=list)  # in training order: prompt, completion, engine, question_id, phase
    tokens: int = 0  # what `count` says the rows hold

    def add(self, row: dict, tokens: int, phase: int = 0) -> None:
        self.rows.append({**row, "phase": phase})
        self.tokens += tokens


def rotated(translations: dict[str, list[dict]], engines: list[str]) -> list[dict]:
    """Each question once, in the dialect its id picks (the next one in rotation whose
    translation was verified when that one was not)."""
    by_q: dict[str, dict[str, dict]] = {}
    for e in engines:
        for r in translations.get(e, []):
            by_q.setdefault(r["question_id"], {})[e] = r
    out = []
    for qid in sorted(by_q):
        start = zlib.crc32(qid.encode()) % len(engines)
        for i in range(len(engines)):
            e = engines[(start + i) % len(engines)]
            if e in by_q[qid]:
                out.append(by_q[qid][e])
                break
    return out


def _fill(arm: Arm, pool: list[dict], until: int, count: Callable[[dict], int], rng: random.Random,
          phase: int = 0) -> None:
    """Rows of `pool` in a seeded order (again from the start when it runs out: a second epoch of
    them) until the next one would take the arm past `until` tokens in all. Targets are the
    arm's running total, so no fill's shortfall adds to the next one's."""
    if not pool:
        return
    while True:
        order = pool[:]
        rng.shuffle(order)
        for r in order:
            t = count(r)
            if arm.tokens + t > until:
                return
            arm.add(r, t, phase)


def build_arms(translations: dict[str, list[dict]], mix: str, engines: list[str], count: Callable[[dict], int],
               seed: int = 0, replay_share: float = 0.25) -> list[Arm]:
    """The models of one mixing arm and their rows, at the `mixed` arm's token budget.
    `translations`: engine → rows with question_id, prompt, completion."""
    if mix not in MIXES:
        raise ValueError(f"mix {mix!r}: expected one of {', '.join(MIXES)}")
    rng = random.Random(f"{seed}/mix/{mix}")
    mixed_rows = rotated(translations, engines)
    budget = sum(count(r) for r in mixed_rows)
    if mix == "mixed":
        arm = Arm("mixed", list(engines))
        rows = mixed_rows[:]
        rng.shuffle(rows)
        for r in rows:
            arm.add(r, count(r))
        return [arm]
    if mix == "single":
        arms = []
        for e in engines:
            arm = Arm(f"single-{e}", [e])
            _fill(arm, translations.get(e, []), budget, count, rng)
            arms.append(arm)
        return arms
    arm = Arm("replay", list(engines))
    share = budget / len(engines)
    for phase, e in enumerate(engines):
        fresh = [r for r in mixed_rows if r["engine"] == e]
        end = budget if phase == len(engines) - 1 else int(share * (phase + 1))
        if phase == 0:
            _fill(arm, fresh, end, count, rng, phase)
            continue
        earlier = [{k: v for k, v in r.items() if k != "phase"} for r in arm.rows]
        _fill(arm, fresh, end - int(share * replay_share), count, rng, phase)
        _fill(arm, earlier, end, count, rng, phase)
    return [arm]  # training shuffles each phase's rows and keeps the phases in order (phased_order)


def hold_out_arm(translations: dict[str, list[dict]], held_out: str, engines: list[str],
                 count: Callable[[dict], int], seed: int = 0) -> Arm:
    """One model on every dialect but `held_out`, each question once in a rotated dialect, at
    the `mixed` arm's token budget."""
    if held_out not in engines:
        raise ValueError(f"hold-out {held_out!r}: not one of the engines {', '.join(engines)}")
    budget = sum(count(r) for r in rotated(translations, engines))
    rest = [e for e in engines if e != held_out]
    arm = Arm(f"hold-out-{held_out}", rest)
    _fill(arm, rotated(translations, rest), budget, count, random.Random(f"{seed}/hold-out/{held_out}"))
    return arm
