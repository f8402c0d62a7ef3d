"""The model FLOPs a stage does, as a share of what this machine's matrix units can do.

`matmul_rate` measures the machine once: a bf16 matmul loop in torch, the kind of work a
transformer's linear layers are (on a CPU with AMX or AVX-512 BF16 that is its fastest path).
`lm_flops_per_token` counts a causal LM's matmul FLOPs per token: 2 per weight that multiplies
an activation (every linear layer and the LM head; not the embedding lookup) for a forward
pass, 6 for a training step (forward, and backward twice that). Attention's own score
matmuls are left out: at these prompt lengths they are a few percent. The share
`tokens/s × FLOPs per token / matmul rate` says how far a stage is from the machine's limit.
"""

from __future__ import annotations

import functools
import time


@functools.cache
def matmul_rate(size: int = 1024, seconds: float = 2.0, dtype: str = "bfloat16") -> float:
    """FLOP/s of `size`×`size` matmuls in `dtype` on this process's torch threads."""
    import torch

    dt = getattr(torch, dtype)
    a, b = torch.randn(size, size, dtype=dt), torch.randn(size, size, dtype=dt)
    for _ in range(3):
        a @ b  # warm-up: kernel selection, page faults
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        count += 1
    return 2 * size ** 3 * count / (time.perf_counter() - t0)


@functools.cache
def lm_flops_per_token(model_path: str, training: bool) -> float:
    """Matmul FLOPs per token of the causal LM in `model_path` (config only; nothing loaded)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_path)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    head = model.get_output_embeddings()
    if head is not None and not isinstance(head, torch.nn.Linear):
        weights += head.weight.numel()
    return (6 if training else 2) * weights


def matmul_share(tokens_per_s: float, model_path: str, training: bool) -> float:
    return tokens_per_s * lm_flops_per_token(model_path, training) / matmul_rate()
