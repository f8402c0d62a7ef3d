"""The vLLM generator actor on CPU with the tiny model: best-of-N, weight reload, and the
translation repair loop running on it (it runs and records attempts; a random-init model is
not expected to repair well)."""

import pytest



@pytest.fixture(scope="module")
def generator(ray_local, tiny):
    from actors.generator import start_generators
    from exesql_ray.config import GenerationConfig

    cfg = GenerationConfig(n=4, max_tokens=12, max_model_len=2048, num_cpus=1)
    (actor,) = start_generators(str(tiny), cfg)
    yield actor
    ray_local.kill(actor)


def test_best_of_n_and_reload(ray_local, generator, tiny):
    prompts = ray_local.get(generator.chat.remote(["How many customers are there?", "List all products."]))
    # the assistant turn opens with the answer's fence (generation.answer_prefix) ...
    assert all(p.endswith("<|im_start|>assistant\n```sql\n") for p in prompts)
    outs = ray_local.get(generator.generate.remote(prompts, seed=1))
    assert len(outs) == 2 and all(len(o) == 4 for o in outs)
    # ... which every completion carries, and none goes on past a closing fence (the stop)
    assert all(c.startswith("```sql\n") and "```" not in c[len("```sql\n"):] for o in outs for c in o)
    greedy = ray_local.get(generator.generate.remote(prompts, n=1, temperature=0.0))
    ray_local.get(generator.reload.remote(str(tiny)))  # same weights: greedy output unchanged
    assert ray_local.get(generator.generate.remote(prompts, n=1, temperature=0.0)) == greedy
    too_long = ray_local.get(generator.generate.remote(["x " * 5000], n=2))
    assert too_long == [["", ""]]


def test_repair_loop_runs_on_the_generator(generator, spider_engines):
    from actors.generator import GeneratorBackend
    from exesql_ray.translate import translate_example
    from test_translate import _example

    ex = _example("concert_singer", "SELECT count(*) FROM singer WHERE date('now', '-1 day') IS NOT NULL")
    rec = translate_example(ex, "postgres", spider_engines["sqlite"], spider_engines["postgres"],
                            backend=GeneratorBackend(generator), max_rounds=2)
    assert rec["attempts"] == 3  # rules + two rounds on the model, whatever it answered
    # "llm" once the model offers a candidate; the rules' method when it offered none
    assert rec["method"] in ("llm", "sqlglot", "rules")
    assert rec["verdict"] in ("verified", "error", "executes_mismatch")
