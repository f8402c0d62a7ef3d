"""LLM repair backends for translation: anything that turns prompts into completions.

- `OpenAICompatible`: any /v1/chat/completions endpoint (the paper used GPT-4o this way);
  base URL and model from the config, the key from an environment variable.
- The project's own vLLM generator actors plug in the same way (the sampling stage's
  `actors/generator.py`), as an object with `complete(prompts) -> completions`.
"""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Protocol

from exesql_ray.errors import UserError


class RepairBackend(Protocol):
    name: str

    def complete(self, prompts: list[str]) -> list[str]: ...


class OpenAICompatible:
    """Chat completions over HTTP with the standard library (no SDK pinned to one vendor)."""

    def __init__(self, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY", timeout_s: float = 60,
                 temperature: float = 0.0, max_tokens: int = 512):
        if not base_url or not model:
            raise UserError("translate.repair: base_url and model are required for the openai backend")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.key = os.environ.get(api_key_env, "")
        self.timeout_s, self.temperature, self.max_tokens = timeout_s, temperature, max_tokens
        self.name = f"openai:{model}"

    def complete(self, prompts: list[str]) -> list[str]:
        out = []
        for p in prompts:
            body = json.dumps({"model": self.model, "messages": [{"role": "user", "content": p}],
                               "temperature": self.temperature, "max_tokens": self.max_tokens}).encode()
            req = urllib.request.Request(self.url, data=body, headers={
                "Content-Type": "application/json", **({"Authorization": f"Bearer {self.key}"} if self.key else {})})
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                data = json.load(resp)
            out.append(data["choices"][0]["message"]["content"] or "")
        return out
