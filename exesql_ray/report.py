"""`exesql-ray report RUN`: the run's numbers as Markdown and PNG plots, in `<RUN>/report/`.

Everything comes from the files the stages wrote (pipeline.json, translate/summary.json,
sample/iter-k/summary.json and shards, eval/*/metrics.json, train/*/*/metrics.jsonl), so a
report can be rebuilt at any time, also for a run that is still going or was stopped.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from exesql_ray.errors import UserError
from exesql_ray.io import atomic_write, write_text


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _iter_dirs(root: Path) -> list[Path]:
    return sorted((p for p in root.glob("iter-*") if p.is_dir()), key=lambda p: int(p.name.split("-")[1]))


def collect(run_dir: str | Path) -> dict:
    """The report's figures, read from the run folder."""
    run = Path(run_dir)
    if not run.is_dir():
        raise UserError(f"report: {run} is not a run folder")
    manifest = _json(run / "pipeline.json")
    evals = {}
    for d in [run / "eval" / "base", *_iter_dirs(run / "eval")]:
        m = _json(d / "metrics.json")
        if m:
            evals[d.name] = m
    samples, errors = {}, {}
    for d in _iter_dirs(run / "sample"):
        s = _json(d / "summary.json")
        if s:
            samples[d.name] = s
            errors[d.name] = _error_classes(d, list(s["engines"]))
    training = {}
    for d in _iter_dirs(run / "train"):
        for stage in ("sft", "dpo", "grpo"):
            f = d / stage / "metrics.jsonl"
            if f.is_file():
                rows = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
                training[f"{stage}/{d.name}"] = [r for r in rows if "loss" in r and "train_runtime" not in r]
    if not (manifest or evals or samples):
        raise UserError(f"report: {run} holds no stage output yet (pipeline.json, eval/, sample/)")
    return {"run": str(run), "manifest": manifest, "translate": _json(run / "translate" / "summary.json"),
            "evals": evals, "samples": samples, "errors": errors, "training": training}


def _error_classes(sample_root: Path, engines: list[str]) -> dict[str, dict[str, int]]:
    """Failing candidates per engine by error class (`wrong result` for ones that ran)."""
    import pyarrow.parquet as pq

    out = {}
    for engine in engines:
        c: Counter = Counter()
        for part in sorted((sample_root / engine).glob("part-*.parquet")):
            t = pq.read_table(part, columns=["outcome", "error_class"]).to_pydict()
            for outcome, cls in zip(t["outcome"], t["error_class"]):
                if outcome == "wrong":
                    c["wrong result"] += 1
                elif outcome != "pass":
                    c[cls or outcome] += 1
        out[engine] = dict(c.most_common())
    return out


def ex_rows(data: dict, what: str = "ex") -> tuple[list[str], dict[str, dict]]:
    """(columns, {split/engine: {column: EX}}) over base, iter-0, iter-1, …; what="ci95": the
    95% Wilson interval [lo, hi] of each instead."""
    cols = list(data["evals"])
    rows: dict[str, dict] = {}
    for name, m in data["evals"].items():
        for split, engines in m["splits"].items():
            for engine, a in engines.items():
                rows.setdefault(f"{split}/{engine}", {})[name] = a.get(what)
    return cols, rows


def _with_interval(ex: float | None, ci: list | None) -> str:
    if ex is None:
        return "–"
    return f"{ex:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{ex:.3f}"


def gain_rows(data: dict) -> list[list]:
    """[split/engine, "B vs A", gain, "[lo, hi]", beyond its interval?] for each later model
    against the base model and against the one before it (paired bootstrap, same questions)."""
    from exesql_ray.evaluate import gains

    return [[f"{split}/{engine}", pair, b["gain"], f"[{b['lo']:+.3f}, {b['hi']:+.3f}]",
             "yes" if b["beyond"] else "no (within noise)"]
            for split, by_engine in gains(data["evals"]).items() for engine, pairs in by_engine.items()
            for pair, b in pairs.items()]


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def plot(data: dict, out: Path) -> list[str]:
    """The PNGs; returns their file names (a plot with nothing to show is left out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []

    def save(fig, name):
        fig.tight_layout()
        atomic_write(out / name, lambda tmp: fig.savefig(tmp, dpi=110, format="png"), "a plot of the report")
        plt.close(fig)
        made.append(name)

    cols, rows = ex_rows(data)
    _, cis = ex_rows(data, "ci95")
    if cols:
        fig, ax = plt.subplots(figsize=(6, 3.6))
        nan = float("nan")
        for j, (key, vals) in enumerate(rows.items()):
            ys = [vals.get(c) if vals.get(c) is not None else nan for c in cols]
            ci = [cis[key].get(c) for c in cols]
            err = [[y - c[0] if c else 0 for y, c in zip(ys, ci)], [c[1] - y if c else 0 for y, c in zip(ys, ci)]]
            xs = [i + 0.06 * (j - (len(rows) - 1) / 2) for i in range(len(cols))]  # apart, so bars stay readable
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=key)
        ax.set_xticks(range(len(cols)), cols)
        ax.set_ylabel("execution accuracy (EX), 95% interval")
        tops = [c[1] for r in cis.values() for c in r.values() if c] + [v for r in rows.values() for v in r.values()
                                                                         if v is not None]
        ax.set_ylim(0, max(tops + [0.05]) * 1.15)
        ax.set_title("EX per engine after each iteration")
        ax.legend(fontsize=7)
        save(fig, "ex.png")
    its = list(data["samples"])
    if its:
        engines = list(next(iter(data["samples"].values()))["engines"])
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
        for e in engines:
            axes[0].plot(its, [data["samples"][i]["engines"][e]["pass@1"] for i in its], marker="o", label=e)
            axes[1].plot(its, [data["samples"][i]["engines"][e]["pass@N"] for i in its], marker="o", label=e)
        n = next(iter(data["samples"].values()))["n"]
        axes[0].set_title("pass@1 of sampling")
        axes[1].set_title(f"pass@{n} of sampling")
        for ax in axes:
            ax.set_ylim(bottom=0)
            ax.legend(fontsize=7)
        save(fig, "pass_at.png")
        fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(its) * len(engines)), 3.6))
        kinds, width = ("d_valid", "d_neg", "dpo_pairs"), 0.27
        for j, kind in enumerate(kinds):
            vals = [data["samples"][i]["engines"][e][kind] for i in its for e in engines]
            ax.bar([x + j * width for x in range(len(vals))], vals, width, label=kind)
        labels = [f"{i}\n{e}" for i in its for e in engines]
        ax.set_xticks([x + width for x in range(len(labels))], labels, fontsize=7)
        ax.set_title("D_Valid, D_Neg and DPO pairs per iteration and engine")
        ax.legend(fontsize=7)
        save(fig, "datasets.png")
    last_errors = data["errors"][its[-1]] if its else {}
    if any(last_errors.values()):
        classes = list(dict.fromkeys(c for per in last_errors.values() for c in per))
        fig, ax = plt.subplots(figsize=(7, 3.6))
        bottom = [0] * len(last_errors)
        for c in classes:
            vals = [last_errors[e].get(c, 0) for e in last_errors]
            ax.bar(list(last_errors), vals, bottom=bottom, label=c)
            bottom = [b + v for b, v in zip(bottom, vals)]
        ax.set_title(f"failing candidates by error class ({its[-1]})")
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, not over one
        save(fig, "errors.png")
    tr = data["translate"].get("engines", {})
    if tr:
        methods = list(dict.fromkeys(m for s in tr.values() for m in s.get("verified_by_method", {})))
        verdicts = list(dict.fromkeys(v for s in tr.values() for v in s["verdicts"] if v != "verified"))
        fig, ax = plt.subplots(figsize=(6, 3.4))
        bottom = [0] * len(tr)
        for label, get in [*[(f"verified: {m}", lambda s, m=m: s.get("verified_by_method", {}).get(m, 0))
                             for m in methods], *[(v, lambda s, v=v: s["verdicts"].get(v, 0)) for v in verdicts]]:
            vals = [get(s) for s in tr.values()]
            ax.bar(list(tr), vals, bottom=bottom, label=label)
            bottom = [b + v for b, v in zip(bottom, vals)]
        ax.set_title("stage 1: translation verdicts by method")
        ax.legend(fontsize=7)
        save(fig, "translation.png")
    stages = {k: v["seconds"] for k, v in data["manifest"].get("stages", {}).items() if "seconds" in v}
    if stages:
        fig, ax = plt.subplots(figsize=(6, 0.3 * len(stages) + 1.2))
        ax.barh(list(stages)[::-1], list(stages.values())[::-1])
        ax.set_xlabel("seconds")
        ax.set_title("stage times")
        save(fig, "stage_times.png")
    if data["training"]:
        fig, ax = plt.subplots(figsize=(6, 3.4))
        for name, rows_ in data["training"].items():
            ax.plot([r["step"] for r in rows_], [r["loss"] for r in rows_], label=name)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_yscale("log")
        ax.set_title("training loss")
        ax.legend(fontsize=7)
        save(fig, "training_loss.png")
    return made


def markdown(data: dict, pngs: list[str]) -> str:
    out = [f"# exesql-ray run report: {data['run']}", ""]
    cols, rows = ex_rows(data)
    if cols:
        _, cis = ex_rows(data, "ci95")
        out += ["## Execution accuracy (greedy, one answer per question)", "",
                "`base`: the model before training; `iter-k`: after iteration k (0: SFT on the verified "
                "translations; k ≥ 1: sample → SFT → DPO). Each cell: EX [95% Wilson interval].", "",
                _table(["split/engine", *cols], [[k, *[_with_interval(v.get(c), cis[k].get(c)) for c in cols]]
                                                 for k, v in rows.items()]), ""]
        gained = gain_rows(data)
        if gained:
            out += ["Gains over the same questions (paired bootstrap, 95% interval; beyond it: the interval "
                    "excludes 0):", "", _table(["split/engine", "models", "gain", "95% interval", "beyond"], gained), ""]
        by_diff = [[f"{split}/{e}", d, a2["ex"], int(a2["n"])]
                   for split, es in data["evals"][cols[-1]]["splits"].items() for e, a in es.items()
                   for d, a2 in a["by_difficulty"].items()]
        if by_diff:
            out += [f"By difficulty ({cols[-1]}):", "", _table(["split/engine", "difficulty", "EX", "questions"],
                                                               by_diff), ""]
    if "ex.png" in pngs:
        out += ["![EX](ex.png)", ""]
    if data["samples"]:
        out += ["## Sampling (best-of-N, executed)", ""]
        rows_ = [[i, e, s["candidates"], s["pass@1"], s["pass@N"], s["d_valid"], s["d_neg"], s["dpo_pairs"]]
                 for i, summ in data["samples"].items() for e, s in summ["engines"].items()]
        out += [_table(["iteration", "engine", "candidates", "pass@1", "pass@N", "D_Valid", "D_Neg", "DPO pairs"],
                       rows_), ""]
        out += [f"![{p}]({p})" for p in ("pass_at.png", "datasets.png") if p in pngs] + [""]
        last = list(data["errors"])[-1]
        out += [f"Failing candidates by error class ({last}):", "",
                _table(["engine", "classes"], [[e, ", ".join(f"{c} {n}" for c, n in cl.items()) or "none"]
                                               for e, cl in data["errors"][last].items()]), ""]
        if "errors.png" in pngs:
            out += ["![errors](errors.png)", ""]
    tr = data["translate"].get("engines", {})
    if tr:
        out += ["## Stage 1: translations kept when they return the SQLite result", "",
                _table(["engine", "verified share", "verified by method", "other verdicts"],
                       [[e, s["verified_share"], ", ".join(f"{m} {n}" for m, n in s.get("verified_by_method", {}).items()),
                         ", ".join(f"{v} {n}" for v, n in s["verdicts"].items() if v != "verified") or "none"]
                        for e, s in tr.items()]), ""]
        if "translation.png" in pngs:
            out += ["![translation](translation.png)", ""]
    if data["training"]:
        from exesql_ray.train import first_last

        out += ["## Training", "", _table(["stage", "steps", "first loss (mean of 3 steps)", "last loss (mean of 3 steps)"],
                                          [[k, len(v), first_last(v, first=True).get("loss"),
                                            first_last(v, first=False).get("loss")]
                                           for k, v in data["training"].items() if v]), ""]
        if "training_loss.png" in pngs:
            out += ["![loss](training_loss.png)", ""]
    stages = data["manifest"].get("stages", {})
    if stages:
        out += ["## Stages", "", _table(["stage", "seconds", "finished"],
                                        [[k, v.get("seconds"), v["finished"]] for k, v in stages.items()]), ""]
        if "stage_times.png" in pngs:
            out += ["![stage times](stage_times.png)", ""]
    return "\n".join(out)


def write_report(run_dir: str | Path) -> Path:
    """Write `<run_dir>/report/report.md` and its PNGs; returns the Markdown's path."""
    data = collect(run_dir)
    out = Path(run_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    pngs = plot(data, out)
    path = out / "report.md"
    return write_text(path, markdown(data, pngs), "the report")


def compare_runs(runs: list[str | Path], out: str | Path) -> Path:
    """The paper's table shape across runs: engines × (dataset, split), EX of each run's last
    evaluated model (one run per dataset, e.g. Spider, WikiSQL, BIRD → the same engines)."""
    cols, table, models = [], {}, []
    for run in runs:
        data = collect(run)
        if not data["evals"]:
            raise UserError(f"report: {run} has no evaluation yet (eval/*/metrics.json)")
        name, m = list(data["evals"].items())[-1]
        models.append(f"- `{run}`: {name} ({m['model']})")
        for split, engines in m["splits"].items():
            col = f"{m['dataset']} {split}"
            if col in cols:  # two runs on one dataset (other settings): tell them apart
                col = f"{col} ({run})"
            cols.append(col)
            for engine, a in engines.items():
                table.setdefault(engine, {})[col] = a["ex"]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "compare.md"
    text = "\n".join(["# EX by engine and dataset (greedy, the last evaluated model of each run)", "",
                      _table(["engine", *cols], [[e, *[row.get(c) for c in cols]] for e, row in table.items()]),
                      "", "Runs:", *models, ""])
    return write_text(path, text, "the comparison of runs")


def learning_summary(run_dir, manifest: dict, dataset: str) -> str:
    """The run's EX table with 95% intervals, the gains with their paired-bootstrap intervals,
    each stage's time, and one JSON line of the headline figures."""
    from exesql_ray.evaluate import gain_intervals, gains

    evals = collect(run_dir)["evals"]
    split = next((sp for m in evals.values() for sp in m["splits"]), None)
    if split is None:
        return f"no evaluation yet; stages: {Path(run_dir) / 'pipeline.json'}"
    cols = list(evals)
    engines = list(dict.fromkeys(e for m in evals.values() for e in m["splits"].get(split, {})))
    cell = {(c, e): evals[c]["splits"].get(split, {}).get(e) for c in cols for e in engines}
    lines = [f"EX on {dataset} {split}: greedy, one answer per question, with its 95% interval (Wilson); "
             f"base: the model before training, iter-k: after iteration k"]
    lines.append(f"{'engine':<10}" + "".join(f"{c:>22}" for c in cols))
    for e in engines:
        row = ""
        for c in cols:
            a = cell[(c, e)]
            row += f"{'-':>22}" if not a or a["ex"] is None else \
                f"{a['ex']:.3f} [{a['ci95'][0]:.3f}, {a['ci95'][1]:.3f}]".rjust(22)
        lines.append(f"{e:<10}" + row)
    g = gains(evals).get(split, {})
    if g:
        lines.append("gains, with the paired-bootstrap 95% interval over the same questions:")
        for e in engines:
            for name, b in g.get(e, {}).items():
                if b["gain"] is None:
                    continue
                verdict = ("beyond its interval" if b["beyond"] else "within noise: not shown to change EX")
                lines.append(f"  {e:<9} {name:<18} {b['gain']:+.3f} [{b['lo']:+.3f}, {b['hi']:+.3f}]  {verdict}")
    stages = manifest.get("stages", {})
    lines.append("stage times: " + ", ".join(f"{k} {v['seconds']:.0f} s" for k, v in stages.items()))
    total = sum(v["seconds"] for v in stages.values())
    lines.append(f"report: {stages.get('report', {}).get('path', '-')}; stages: {Path(run_dir) / 'pipeline.json'}")
    headline = {"ex": {c: {e: (cell[(c, e)] or {}).get("ex") for e in engines} for c in cols},
                "ci95": {c: {e: (cell[(c, e)] or {}).get("ci95") for e in engines} for c in cols},
                "gain_ci": gain_intervals(g), "minutes": round(total / 60, 1), "report": stages.get("report", {}).get("path")}
    lines.append(json.dumps(headline))
    return "\n".join(lines)
