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
"""

from __future__ import annotations


def compact_fused_lm_head(model) -> bool:
    """Patch `model` (already patched by TRL's trainer) in place; False when left as it was.
    A DeepSpeed engine (TRL's ZeRO reference model) is patched through its module."""
    import torch
    from trl.trainer.utils import FusedCausalLMOutput

    model = getattr(model, "module", model)
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
    return True
