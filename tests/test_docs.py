"""The docs stay true: every config key is documented, the README stays a short guide whose
layout names what exists and whose commands parse."""

import re
import shlex

from pydantic import BaseModel

from conftest import ROOT
from controller.cli import build_parser
from exesql_ray.config import Config


def config_keys(model=Config, prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys += config_keys(ann, f"{prefix}{name}.")
        else:
            keys.append(prefix + name)
    return keys


def test_every_config_key_is_documented():
    doc = (ROOT / "docs" / "config.md").read_text()
    missing = [k for k in config_keys() if f"`{k}`" not in doc]
    assert not missing, f"docs/config.md lacks {missing}"
    documented = set(re.findall(r"^\| `([a-z_.]+)` \|", doc, re.M))
    assert documented <= set(config_keys()), f"docs/config.md documents keys that do not exist: " \
                                             f"{sorted(documented - set(config_keys()))}"


def test_readme_is_a_short_guide():
    assert len((ROOT / "README.md").read_bytes()) <= 12 * 1024


def test_readme_layout_names_what_exists():
    """Each file or folder the layout tree names exists (indented names: under exesql_ray/)."""
    text = (ROOT / "README.md").read_text()
    tree = text.split("## Layout", 1)[1].split("```")[1]
    named = 0
    for line in tree.splitlines():
        names = re.findall(r"(?<!\S)([\w-]+(?:\.(?:py|yaml|yml|md|sh|json)|/)),?(?!\S)", line)
        base = ROOT / "exesql_ray" if line.startswith("  ") else ROOT
        for i, name in enumerate(names):
            # a line that opens with a folder lists what is in it
            under = names[0] if i > 0 and names[0].endswith("/") and not line.startswith("  ") else ""
            path = base / under / name
            assert path.exists(), f"README layout names {path.relative_to(ROOT)}, which does not exist"
            named += 1
    assert named > 20


def test_readme_commands_parse():
    """Each `$X …` line of the README (X: the CLI) parses with the real argument parser."""
    text = (ROOT / "README.md").read_text()
    parser = build_parser()
    lines = [ln.split("#")[0].strip() for ln in text.splitlines() if ln.startswith("$X ")]
    assert lines
    for line in lines:
        if "|" in line:  # the stage-by-stage line lists alternatives
            continue
        args = [a for a in shlex.split(line)[1:]]
        parser.parse_args([a if a != "C" else "configs/quickstart.yaml" for a in args])


def test_the_library_imports_neither_the_controller_nor_the_actors():
    """exesql_ray/ is pure logic: the app (controller/, actors/, jobs/) builds on it, never the
    other way round."""
    import ast

    for path in (ROOT / "exesql_ray").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in ("actors", "controller", "jobs"), \
                    f"{path.relative_to(ROOT)} imports {name}"


def test_actors_holds_only_actors():
    """actors/ defines classes (Ray actors and Ray Data callables) and the helpers that start
    them; the stage runners live in controller/."""
    import ast

    for path in (ROOT / "actors").glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef):
                assert node.name.startswith("_") or node.name in ("start_generators", "cpu_env"), \
                    f"{path.relative_to(ROOT)} defines {node.name}: a runner belongs in controller/"


def test_version_names_the_parts_a_result_depends_on():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "controller", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    for part in ("exesql-ray 0.", "ray 2.", "vllm ", "torch 2.", "trl "):
        assert part in r.stdout, r.stdout


def test_no_file_points_at_what_a_clone_does_not_have():
    """Facts live in docs/: a user's clone has no ../shared folder beside it."""
    hits = []
    for path in ROOT.rglob("*"):
        if any(p in path.parts for p in (".venv", ".run", ".git", "runs", "__pycache__")) or not path.is_file():
            continue
        if path.suffix in (".py", ".md", ".sh", ".toml", ".txt", ".yaml", ".cfg") or path.name == "Makefile":
            text = path.read_text(errors="replace")
            if re.search(r"shared/[A-Z]+[.]md|PLATFORM[.]md", text):
                hits.append(str(path.relative_to(ROOT)))
    assert not hits, f"these name a note of the shared folder, which a clone lacks (facts go in docs/): {hits}"
