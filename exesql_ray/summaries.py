"""What each stage's runner returns: typed records. `to_dict()` is what the stage writes to its
summary.json (or metrics.json) and what the pipeline's manifest and the report read back from
disk; `from_dict` reads such a file. Field names follow the JSON keys, except where a key is
no Python name (`pass@1` → `pass_at_1`, `from` → `start`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Record(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    def to_dict(self) -> dict:
        return self.model_dump(mode="json", by_alias=True)

    @classmethod
    def from_dict(cls, data: dict):
        return cls.model_validate(data)


class TranslateEngine(Record):
    verdicts: dict[str, int]
    verified_by_method: dict[str, int]
    verified_share: float | None  # of the examples whose gold runs on SQLite
    gold_errors: int = 0  # examples whose gold fails on SQLite: no translation can be verified
    verified_of_all: float | None = None  # of every example, gold failures counted

    def describe(self) -> str:
        """The verified share with the gold failures beside it: a share over the working gold
        alone hides questions that will go unjudged."""
        if self.verified_share is None:
            return f"nothing verified ({self.gold_errors} gold queries fail on SQLite)"
        text = f"{self.verified_share:.1%} verified"
        if self.gold_errors:
            text += (f" of those whose gold runs on SQLite; {self.gold_errors} gold queries fail on SQLite "
                     f"({self.verified_of_all:.1%} verified of all)")
        return text


class TranslateSummary(Record):
    """Stage 1: verdicts per target engine over every shard on disk."""

    examples: int
    skipped_missing_db: int
    engines: dict[str, TranslateEngine]
    seconds: float


class SampleEngine(Record):
    questions: int  # questions with a judged candidate
    questions_planned: int
    candidates: int
    complete: bool
    by_status: dict[str, int]
    by_outcome: dict[str, int]
    by_reward_mode: dict[str, int]
    gold: dict[str, int]  # where each question's gold came from
    d_valid: int
    d_neg: int
    dpo_pairs: int
    dpo_pairs_by_kind: dict[str, int]
    pass_at_1: float | None = Field(default=None, alias="pass@1")
    pass_at_n: float | None = Field(default=None, alias="pass@N")
    pass_at_k: dict[int, float] = Field(default_factory=dict)  # unbiased estimator, k = 1, 2, 4, … N
    frontier_share: float | None = None  # questions with a passing and a failing sample
    tokens: dict[str, int] = Field(default_factory=dict)  # prompt (each question's once), completion


class SampleSummary(Record):
    """Stage 2 of one iteration: candidates, pass@k, D_Valid / D_Neg / pairs per engine."""

    iteration: int
    model: str
    n: int
    questions: int
    skipped_missing_db: int
    seconds: float
    engines: dict[str, SampleEngine]
    # engine → [[seconds since the stage began, executor actors that returned a batch in the
    # window starting there], …]: how each pool grew and shrank (ActorTrace)
    executor_actors: dict[str, list[list[int]]] = Field(default_factory=dict)


class Accuracy(Record):
    """EX of one model on one split and engine, with its 95% Wilson interval."""

    questions: int
    judged: int
    no_gold: int
    infra_errors: int
    ex: float | None
    ci95: list[float] | None
    outcomes: dict[str, int]  # question id → 1 if its answer matched: for paired comparisons
    runs: float | None  # share of judged answers that ran
    by_difficulty: dict[str, dict[str, float]]


class EvalSummary(Record):
    """One model's EX on every eval split and engine (its metrics.json)."""

    iteration: str  # base, iter-k, or the name it was filed under
    model: str
    dataset: str
    compare: dict
    splits: dict[str, dict[str, Accuracy]]

    def ex(self) -> dict[str, dict[str, float | None]]:
        """{split: {engine: EX}}."""
        return {s: {e: a.ex for e, a in es.items()} for s, es in self.splits.items()}


class TrainSummary(Record):
    """One SFT, DPO or GRPO stage of one iteration."""

    stage: str
    iteration: int
    model: str
    start: str = Field(alias="from")
    reference: str | None
    strategy: str
    workers: int
    rows: int
    sources: dict[str, int]
    dropped_too_long: int
    resumed_from: str | None
    global_step: int | None
    max_steps: int | None
    seconds: float
    first: dict[str, float]  # headline metrics over the first logged steps
    last: dict[str, float]  # … and the last
    # Tokens the batches held (rank 0; prompt, completion, padding; DPO's reference pass
    # included) and the trainer's own seconds (start-up and saving excluded)
    tokens: dict[str, int] = Field(default_factory=dict)
    train_seconds: float | None = None
