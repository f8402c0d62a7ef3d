"""Candidate generation as a Ray Data `map_batches` callable: a batch of questions goes to one
generator replica (`actors/generator.py`), N candidates per question come back as rows. The
stage runner that chains it with the executor actors is `controller/sample.py`."""

from __future__ import annotations

import zlib

import pyarrow as pa

from exesql_ray.sample_stage import explode


class GenerateCandidates:
    """map_batches callable: a batch of questions → N candidate rows per question."""

    def __init__(self, generators: list, model_path: str, iteration: int, n: int, temperature: float):
        self.generators = generators
        self.model_path = model_path
        self.iteration = iteration
        self.n, self.temperature = n, temperature

    def __call__(self, batch: pa.Table) -> pa.Table:
        import ray

        questions = batch.to_pylist()
        # Route by content so a retried batch goes to the same replica; replicas queue calls.
        gen = self.generators[zlib.crc32(questions[0]["question_id"].encode()) % len(self.generators)]
        completions = ray.get(gen.sample.remote([q["prompt"] for q in questions], [q["seed"] for q in questions],
                                                self.model_path, self.n, self.temperature))
        return pa.Table.from_pylist(explode(questions, completions, self.iteration))
