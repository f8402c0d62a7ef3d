"""TRL's fused LM head, evaluated only where a token is scored.

TRL's SFT and DPO trainers patch the model with `add_fused_lm_head`: a forward that returns
per-token log-probabilities (and entropy, top-1 hits for the metrics) instead of logits. On
GPUs with Triton it projects only the positions that have a label (the "compact" path); its
torch fallback, the one CPUs get, projects every position of the batch, prompt included, in
float32 tiles, forward and again in backward. For our rows the answer is a fifth of the
tokens, so on CPU the head dominated a training step (bench/learning.py prints the figure).

`compact_fused_lm_head` re-patches the same forward with the compact path in plain torch:
the backbone, then the head on the scored positions only (under the trainer's autocast), then
a float32 log-softmax. It returns TRL's own output record, so TRL's losses and metrics are
unchanged. Models whose head scales or soft-caps its logits keep TRL's forward.

With `shared_prompt` (DPO) the backbone reads each prompt once. TRL's DPO batch holds a
pair's chosen and rejected answers as rows i and B+i, each after the same prompt, and the
prompt is most of a row's tokens: the prompts go through the backbone once with a KV cache,
then both answers of every pair attend to that cache. The hidden states are the same as the
full rows' (the answers see the same keys and values at the same positions), so the log-probs
are, up to rounding; a batch that is not so shaped takes the plain path.
"""

from __future__ import annotations


def pair_prompt_lengths(input_ids, labels, attention_mask=None):
    """Each pair's prompt length when the batch is DPO's (rows i and B+i: one prompt, then its
    chosen and its rejected answer, right-padded; labels -100 outside the answers), else None."""
    import torch

    rows, width = input_ids.shape
    if rows % 2 or rows == 0:
        return None
    columns = torch.arange(width, device=input_ids.device)[None, :]
    if attention_mask is not None:  # right padding only: each row's tokens from column 0 on, unbroken
        if not torch.equal(attention_mask.bool(), columns < attention_mask.sum(1, keepdim=True)):
            return None
    scored = labels != -100
    if not bool(scored.any(1).all()):
        return None
    starts = scored.int().argmax(1)  # first scored token: where the answer begins
    half = rows // 2
    if not torch.equal(starts[:half], starts[half:]):
        return None
    in_prompt = columns < starts[:half, None]
    if not torch.equal(input_ids[:half][in_prompt], input_ids[half:][in_prompt]):
        return None
    return starts[:half]


def shared_prompt_hidden(backbone, input_ids, attention_mask, prompt_len):
    """The backbone's last hidden states for DPO's batch, every prompt read once (module doc)."""
    import torch
    from transformers import DynamicCache

    rows, width = input_ids.shape
    half, device = rows // 2, input_ids.device
    longest = int(prompt_len.max())
    columns = torch.arange(width, device=device)
    prompt_mask = (columns[None, :longest] < prompt_len[:, None]).long()
    cache = DynamicCache(config=backbone.config)
    prompt_hidden = backbone(input_ids=input_ids[:half, :longest], attention_mask=prompt_mask,
                             past_key_values=cache, use_cache=True).last_hidden_state
    starts = prompt_len.repeat(2)
    ends = attention_mask.sum(1) if attention_mask is not None else torch.full_like(starts, width)
    answer_len = ends - starts
    longest_answer = int(answer_len.max())
    offsets = torch.arange(longest_answer, device=device)[None, :]
    real = offsets < answer_len[:, None]
    where = (starts[:, None] + offsets).clamp(max=width - 1)
    cache.batch_select_indices(torch.arange(half, device=device).repeat(2))
    answer_hidden = backbone(input_ids=input_ids.gather(1, where), position_ids=starts[:, None] + offsets,
                             attention_mask=torch.cat([prompt_mask.repeat(2, 1), real.long()], 1),
                             past_key_values=cache, use_cache=True).last_hidden_state
    size = prompt_hidden.shape[-1]
    placed = answer_hidden.new_zeros(rows, width, size).scatter_add(
        1, where[..., None].expand(-1, -1, size), answer_hidden * real[..., None])
    prompts = torch.nn.functional.pad(prompt_hidden.repeat(2, 1, 1), (0, 0, 0, width - longest))
    return torch.where((columns[None, :] < starts[:, None])[..., None], prompts, placed)


def compact_fused_lm_head(model, shared_prompt: bool = False) -> bool:
    """Patch `model` (already patched by TRL's trainer) in place; False when left as it was.
    A DeepSpeed engine (TRL's ZeRO reference model) is patched through its module.
    `shared_prompt`: DPO's batches read each prompt once (module doc)."""
    import torch
    from trl.trainer.utils import FusedCausalLMOutput

    model = getattr(model, "module", model)
    if getattr(model, "_compact_lm_head", False):
        return True
    if not hasattr(getattr(model, "config", None), "get_text_config"):
        return False
    cfg = model.config.get_text_config()
    if any(getattr(cfg, k, None) not in (None, 1.0) for k in
           ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier", "logits_scaling")):
        return False
    trl_forward = model.forward
    lm_head = model.get_output_embeddings()
    backbone = model.base_model

    def forward(*args, fused_lm_head=False, labels=None, shift_labels=None, num_items_in_batch=None, **kwargs):
        if not fused_lm_head or shift_labels is not None or labels is None:
            return trl_forward(*args, fused_lm_head=fused_lm_head, labels=labels, shift_labels=shift_labels,
                               num_items_in_batch=num_items_in_batch, **kwargs)
        kwargs["use_cache"] = False
        ids, prompt_len = kwargs.get("input_ids"), None
        if shared_prompt and not args and ids is not None and not getattr(backbone, "gradient_checkpointing", False) \
                and set(kwargs) <= {"input_ids", "attention_mask", "use_cache"}:
            prompt_len = pair_prompt_lengths(ids, labels, kwargs.get("attention_mask"))
        if prompt_len is not None:
            hidden = shared_prompt_hidden(backbone, ids, kwargs.get("attention_mask"), prompt_len)[:, :-1]
        else:
            hidden = backbone(*args, **kwargs).last_hidden_state[:, :-1]
        target = labels[:, 1:].to(hidden.device)
        mask = target != -100
        tokens = target[mask]
        logits = lm_head(hidden[mask]).float()
        log_probs_all = torch.log_softmax(logits, dim=-1)
        log_probs = log_probs_all.gather(-1, tokens[:, None]).squeeze(-1)
        with torch.no_grad():
            entropy = -(log_probs_all.exp() * log_probs_all).sum(-1)
            log_sum_sq = torch.logsumexp(2 * log_probs_all, dim=-1)
            mean_logits = logits.mean(-1)
            is_top1 = logits.argmax(-1) == tokens

        def full(x):
            return x.new_zeros(mask.shape).masked_scatter(mask, x)

        loss = -log_probs.sum() / (mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch)
        return FusedCausalLMOutput(loss=loss, log_probs=full(log_probs), entropy=full(entropy),
                                   log_sum_sq_probs=full(log_sum_sq), mean_logits=full(mean_logits),
                                   is_top1=full(is_top1), label_mask=mask)

    model.forward = forward
    model._compact_lm_head = True
    return True
