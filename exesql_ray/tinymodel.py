"""The embedded default model: nothing downloaded.

A byte-level BPE tokenizer trained (with `tokenizers`) on the run's own corpus — schemas,
questions, SQL — wrapped as a `PreTrainedTokenizerFast` with a chat template, and a small
random-init Qwen2 causal LM of the configured size, saved together in Hugging Face format so
transformers, TRL and vLLM all load the folder. GPU users set `model.path` instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from exesql_ray.config import TinyModelConfig
from exesql_ray.data.records import atomic_dir
from exesql_ray.engines import SOURCE

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]
# Qwen-style turns; the generation prompt opens the assistant turn.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def corpus_from_examples(examples, schema_texts: dict[str, str]) -> list[str]:
    """What the model will read and write: schemas, questions, evidence, SQL."""
    out = list(schema_texts.values())
    for e in examples:
        out.append(e.question)
        if e.evidence:
            out.append(e.evidence)
        out.append(e.sqlite_sql)
        out.extend(e.dialect_gold.values())
    return out


def build_tiny_model(corpus: list[str], out: str | os.PathLike, cfg: TinyModelConfig, seed: int = 0) -> Path:
    """Train the tokenizer, build the model, save both to `out` (atomically). Returns `out`."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    out = Path(out)
    stamp = out / "exesql_tiny.json"
    params = {"config": cfg.model_dump(), "seed": seed, "corpus_lines": len(corpus)}
    if stamp.is_file() and json.loads(stamp.read_text()) == params:
        return out
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=cfg.vocab_size, min_frequency=2, show_progress=False,
                            special_tokens=SPECIAL)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|im_end|>", bos_token=None,
                                  pad_token="<|pad|>", unk_token=None, additional_special_tokens=SPECIAL[:3])
    tok.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    model_cfg = Qwen2Config(
        vocab_size=len(tok), hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads, num_key_value_heads=cfg.kv_heads,
        max_position_embeddings=cfg.max_position_embeddings, tie_word_embeddings=True,
        bos_token_id=None, eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tok.convert_tokens_to_ids("<|pad|>"), torch_dtype="float32",
    )
    model = Qwen2ForCausalLM(model_cfg)
    model.generation_config.eos_token_id = model_cfg.eos_token_id
    model.generation_config.pad_token_id = model_cfg.pad_token_id
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        (tmp / "exesql_tiny.json").write_text(json.dumps(params))
    return out


def parameter_count(path: str | os.PathLike) -> int:
    import math

    from safetensors import safe_open

    with safe_open(str(Path(path) / "model.safetensors"), "pt") as f:
        return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())


def build_for_run(cfg, out: str | os.PathLike | None = None) -> tuple[Path, int, int]:
    """The tiny model of a run, from its dataset (train and eval splits) and the schema text
    of every target dialect: (folder, examples read, schema texts)."""
    from exesql_ray.data import load_dataset
    from exesql_ray.prompts import schema_text
    from exesql_ray.schema import schema_of

    splits = cfg.data.splits
    ds = load_dataset(cfg.data.dataset, cfg.data.path, splits)
    examples = [e for s in splits for e in ds.splits.get(s, [])]
    engines = [SOURCE, *[e for e in cfg.engines.targets if e != SOURCE]]
    schemas = {(e.db_id, eng, tuple(e.tables)): schema_text(schema_of(e.db_path), eng, e.db_path, tables=e.tables,
                                               form=cfg.prompt.schema_format)
               for e in examples if e.has_db for eng in engines}
    out = Path(out or Path(cfg.run_dir) / "model" / "tiny")
    build_tiny_model(corpus_from_examples(examples, schemas), out, cfg.model.tiny, seed=cfg.seed)
    return out, len(examples), len(schemas)
