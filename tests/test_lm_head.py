"""The compact LM head (exesql_ray/train/lm_head.py): the log-probs and gradients it gives are
the model's own, with and without DPO's shared prompts."""

import pytest
import torch

from exesql_ray.train.lm_head import compact_fused_lm_head, pair_prompt_lengths

PAD = 0


def _model(seed=0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=97, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                      attn_implementation="sdpa")
    return LlamaForCausalLM(cfg).float()


def _dpo_batch(prompts, chosen, rejected):
    """TRL's DPO collator's layout: prompt + chosen rows, then prompt + rejected rows, right-padded;
    labels -100 outside the answers."""
    rows = [p + c for p, c in zip(prompts, chosen)] + [p + r for p, r in zip(prompts, rejected)]
    answer = [[0] * len(p) + [1] * len(c) for p, c in zip(prompts, chosen)] + \
             [[0] * len(p) + [1] * len(r) for p, r in zip(prompts, rejected)]
    width = max(map(len, rows))
    ids = torch.tensor([r + [PAD] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    scored = torch.tensor([a + [0] * (width - len(a)) for a in answer])
    return ids, mask, ids.masked_fill(scored == 0, -100)


def _random_pairs(seed=1):
    g = torch.Generator().manual_seed(seed)
    toks = lambda n: torch.randint(1, 97, (n,), generator=g).tolist()  # noqa: E731
    prompts = [toks(n) for n in (9, 14, 5)]
    return prompts, [toks(n) for n in (4, 2, 6)], [toks(n) for n in (3, 7, 1)]


def _reference_log_probs(model, ids, mask, labels):
    """log p(token) of every scored token from the model's plain forward (full rows, full head)."""
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    target = labels[:, 1:]
    lp = torch.log_softmax(logits, -1).gather(-1, target.clamp(min=0)[..., None]).squeeze(-1)
    return lp * (target != -100)


@pytest.mark.parametrize("shared", [False, True])
def test_compact_head_gives_the_models_log_probs_and_gradients(shared, monkeypatch):
    from exesql_ray.train import lm_head

    taken = []
    real = lm_head.shared_prompt_hidden
    monkeypatch.setattr(lm_head, "shared_prompt_hidden", lambda *a: taken.append(1) or real(*a))
    ids, mask, labels = _dpo_batch(*_random_pairs())
    plain, patched = _model(), _model()
    assert compact_fused_lm_head(patched, shared_prompt=shared)
    expected = _reference_log_probs(plain, ids, mask, labels)
    out = patched(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True)
    assert out.log_probs.shape == expected.shape
    assert torch.allclose(out.log_probs, expected, atol=1e-5), (out.log_probs - expected).abs().max()
    assert taken == ([1] if shared else [])  # each prompt read once: the shared path ran
    # the gradients of a DPO-like objective agree too
    expected.sum().backward()
    out.log_probs.sum().backward()
    for (name, a), b in zip(plain.named_parameters(), patched.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-5, rtol=1e-4), name


def test_the_shared_path_is_taken_only_for_pairs_of_one_prompt():
    prompts, chosen, rejected = _random_pairs()
    ids, mask, labels = _dpo_batch(prompts, chosen, rejected)
    assert pair_prompt_lengths(ids, labels).tolist() == [len(p) for p in prompts]
    # a batch whose rows i and B+i do not share a prompt (an SFT batch, say) is not DPO's
    other = [p[:-1] + [(p[-1] % 96) + 1] for p in prompts]
    ids2, _, labels2 = _dpo_batch(prompts, chosen, rejected)
    ids2[3, : len(other[0])] = torch.tensor(other[0])
    assert pair_prompt_lengths(ids2, labels2) is None
    assert pair_prompt_lengths(ids[:5], labels[:5]) is None  # odd rows
    assert pair_prompt_lengths(ids, labels, mask).tolist() == [len(p) for p in prompts]
    assert pair_prompt_lengths(ids, labels, mask.flip(1)) is None  # left padding
    no_answer = labels.clone()
    no_answer[1] = -100
    assert pair_prompt_lengths(ids, no_answer) is None


def test_patching_twice_changes_nothing():
    model = _model()
    assert compact_fused_lm_head(model, shared_prompt=True)
    forward = model.forward
    assert compact_fused_lm_head(model, shared_prompt=True) and model.forward is forward
