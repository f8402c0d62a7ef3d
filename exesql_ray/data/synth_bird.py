"""`exesql-ray data synth --scale bird`: a BIRD-sized workload for the executor, made offline
and the same for the same seed.

BIRD's databases are large (tables of 10^6 rows and more) and its gold queries take about 22×
as long to execute as Spider's (the ExeSQL paper). Sizing executor pools needs that shape, and
BIRD itself cannot be downloaded at run time. This writes, in Spider's layout (so `db migrate`,
`data stats` and the stages read it as any Spider-style dataset):
- two SQLite databases, `bird_sales` and `bird_sensors`: at the default `rows` (10^6) three
  tables hold 1, 3 and 4 million rows; foreign keys, Zipf-skewed keys and values, text, dates,
  NULLs;
- questions whose gold cost has BIRD's long tail: cheap keyed lookups, range aggregates,
  multi-join aggregations over millions of rows, and a few quadratic self-joins that run past
  any sensible timeout (`cost` names the class of each template);
- `workload.jsonl`: best-of-8 candidates per train question, with what model samples have:
  exact and near duplicates, wrong constants, unknown columns and tables, syntax errors, a
  dropped filter (more rows, more time) and a dropped join condition (a cross join).

The SQL is written to run unchanged on SQLite, PostgreSQL, MariaDB/MySQL and DuckDB (no
engine-specific functions), so one workload measures every engine.
"""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from exesql_ray.errors import UserError

BIRD_VERSION = 3
DATABASES = ("bird_sales", "bird_sensors")
SAMPLES_PER_QUESTION = 8
REGIONS = {"North": ["Oslo", "Stockholm", "Helsinki", "Copenhagen"], "West": ["Lisbon", "Madrid", "Paris", "Dublin"],
           "Central": ["Berlin", "Prague", "Vienna", "Warsaw"], "South": ["Rome", "Athens", "Valencia", "Naples"]}
SEGMENTS = ["consumer", "small business", "enterprise", "public sector"]
CATEGORIES = ["Electronics", "Books", "Garden", "Kitchen", "Sports", "Toys", "Clothing", "Health"]
ADJECTIVES = ["Compact", "Deluxe", "Classic", "Smart", "Eco", "Pro", "Mini", "Ultra", "Travel", "Family"]
NOUNS = ["Lamp", "Kettle", "Backpack", "Speaker", "Jacket", "Notebook", "Blender", "Racket", "Puzzle", "Scale"]
STATUSES = ["delivered", "shipped", "cancelled", "returned", "pending"]
FIRST = ["Ana", "Ben", "Chen", "Dara", "Emil", "Fatima", "Goran", "Hana", "Ivo", "Jana", "Kofi", "Lena", "Milo",
         "Nora", "Omar", "Pia", "Rui", "Sara", "Timo", "Uma", "Vlad", "Wen", "Yara", "Zeno"]
LAST = ["Silva", "Novak", "Berg", "Costa", "Meyer", "Rossi", "Kowalski", "Dubois", "Larsen", "Moreau", "Sato"]
CLIMATES = ["arctic", "temperate", "arid", "tropical", "alpine"]
KINDS = ["temperature", "humidity", "pressure", "vibration"]
MODELS = ["TX-100", "TX-200", "HX-9", "Vega", "Orion", "Atlas"]
DAY0 = np.datetime64("2015-01-01")
DAYS = 10 * 365


def _zipf_ids(rng: np.random.Generator, n: int, high: int, a: float = 1.2) -> np.ndarray:
    """n ids in 1..high, Zipf-skewed (a few hot keys, a long tail), shuffled so that id 1 is not
    always the hottest."""
    ranks = rng.zipf(a, size=n)
    ranks = np.where(ranks > high, rng.integers(1, high + 1, size=n), ranks)
    perm = rng.permutation(high) + 1
    return perm[ranks - 1]


def _dates(rng: np.random.Generator, n: int) -> list[str]:
    return np.datetime_as_string(DAY0 + rng.integers(0, DAYS, size=n).astype("timedelta64[D]")).tolist()


def _insert(con: sqlite3.Connection, table: str, columns: list) -> None:
    rows = zip(*[c.tolist() if isinstance(c, np.ndarray) else c for c in columns])
    con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(columns))})", rows)


def build_sales(con: sqlite3.Connection, rng: np.random.Generator, rows: int) -> dict:
    n_cust, n_prod, n_orders, n_lines = max(rows // 5, 50), max(rows // 50, 40), rows, 3 * rows
    con.executescript("""
        CREATE TABLE stores (store_id INTEGER PRIMARY KEY, name TEXT, city TEXT, region TEXT, opened TEXT);
        CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, name TEXT, city TEXT, segment TEXT,
                                signup_date TEXT);
        CREATE TABLE products (product_id INTEGER PRIMARY KEY, name TEXT, category TEXT, price REAL);
        CREATE TABLE orders (order_id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(customer_id),
                             store_id INTEGER REFERENCES stores(store_id), order_date TEXT, status TEXT,
                             total REAL);
        CREATE TABLE order_lines (line_id INTEGER PRIMARY KEY, order_id INTEGER REFERENCES orders(order_id),
                                  product_id INTEGER REFERENCES products(product_id), quantity INTEGER,
                                  unit_price REAL, discount REAL);
    """)
    cities = [(c, r) for r, cs in REGIONS.items() for c in cs]
    con.executemany("INSERT INTO stores VALUES (?, ?, ?, ?, ?)", [
        (i + 1, f"Store {i + 1}", *cities[i % len(cities)], d) for i, d in enumerate(_dates(rng, 200))])
    city_names = [c for c, _ in cities]
    _insert(con, "customers", [
        np.arange(1, n_cust + 1),
        [f"{FIRST[a]} {LAST[b]}"
         for a, b in zip(rng.integers(0, len(FIRST), n_cust), rng.integers(0, len(LAST), n_cust))],
        [city_names[i] for i in _zipf_ids(rng, n_cust, len(city_names), 1.5) - 1],
        [SEGMENTS[i] for i in rng.choice(len(SEGMENTS), n_cust, p=[.6, .25, .1, .05])],
        _dates(rng, n_cust)])
    _insert(con, "products", [
        np.arange(1, n_prod + 1),
        [f"{ADJECTIVES[a]} {NOUNS[b]} {i}" for i, (a, b) in enumerate(zip(
            rng.integers(0, len(ADJECTIVES), n_prod), rng.integers(0, len(NOUNS), n_prod)), 1)],
        [CATEGORIES[i] for i in _zipf_ids(rng, n_prod, len(CATEGORIES), 1.3) - 1],
        np.round(rng.lognormal(3.0, 1.0, n_prod), 2)])
    statuses = rng.choice(len(STATUSES), n_orders, p=[.7, .12, .08, .05, .05])
    _insert(con, "orders", [
        np.arange(1, n_orders + 1), _zipf_ids(rng, n_orders, n_cust, 1.1), _zipf_ids(rng, n_orders, 200, 1.05),
        _dates(rng, n_orders), [STATUSES[i] for i in statuses], np.round(rng.lognormal(4.0, 1.2, n_orders), 2)])
    discount = np.round(rng.choice([0.0, 0.05, 0.1, 0.2], n_lines), 2).astype(object)
    discount[rng.random(n_lines) < 0.3] = None  # no discount recorded
    _insert(con, "order_lines", [
        np.arange(1, n_lines + 1), rng.integers(1, n_orders + 1, n_lines), _zipf_ids(rng, n_lines, n_prod, 1.1),
        rng.integers(1, 6, n_lines), np.round(rng.lognormal(3.0, 1.0, n_lines), 2), discount])
    con.executescript("""
        CREATE INDEX orders_customer ON orders(customer_id);
        CREATE INDEX orders_store ON orders(store_id);
        CREATE INDEX lines_order ON order_lines(order_id);
        CREATE INDEX lines_product ON order_lines(product_id);
    """)
    return {"stores": 200, "customers": n_cust, "products": n_prod, "orders": n_orders, "order_lines": n_lines}


def build_sensors(con: sqlite3.Connection, rng: np.random.Generator, rows: int) -> dict:
    n_sites, n_dev, n_read = 100, max(rows // 50, 40), 4 * rows
    con.executescript("""
        CREATE TABLE sites (site_id INTEGER PRIMARY KEY, name TEXT, country TEXT, climate TEXT);
        CREATE TABLE devices (device_id INTEGER PRIMARY KEY, site_id INTEGER REFERENCES sites(site_id),
                              model TEXT, serial TEXT, installed TEXT);
        CREATE TABLE readings (reading_id INTEGER PRIMARY KEY, device_id INTEGER REFERENCES devices(device_id),
                               taken_at TEXT, kind TEXT, value REAL);
    """)
    countries = ["Norway", "Portugal", "Germany", "Italy", "Poland", "Greece", "Spain", "Finland"]
    con.executemany("INSERT INTO sites VALUES (?, ?, ?, ?)", [
        (i, f"Site {i}", countries[i % len(countries)], CLIMATES[i % len(CLIMATES)]) for i in range(1, n_sites + 1)])
    _insert(con, "devices", [
        np.arange(1, n_dev + 1), rng.integers(1, n_sites + 1, n_dev), [MODELS[i] for i in rng.integers(0, 6, n_dev)],
        [f"SN-{x:08d}" for x in rng.integers(0, 10**8, n_dev)], _dates(rng, n_dev)])
    days = _dates(rng, n_read)
    secs = rng.integers(0, 86400, n_read)
    kinds = rng.integers(0, len(KINDS), n_read)
    base = np.array([15.0, 55.0, 1010.0, 0.5])[kinds]
    value = np.round(base + rng.standard_t(3, n_read) * np.array([8.0, 15.0, 12.0, 0.3])[kinds], 3).astype(object)
    value[rng.random(n_read) < 0.01] = None  # a sensor that reported nothing
    _insert(con, "readings", [
        np.arange(1, n_read + 1), _zipf_ids(rng, n_read, n_dev, 1.15),
        [f"{d} {s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for d, s in zip(days, secs.tolist())],
        [KINDS[k] for k in kinds], value])
    con.executescript("CREATE INDEX readings_device ON readings(device_id);")
    return {"sites": n_sites, "devices": n_dev, "readings": n_read}


# ---------------------------------------------------------------- questions

@dataclass(frozen=True)
class Template:
    name: str
    db_id: str
    cost: str  # lookup | range | join | over_timeout: the class of its execution cost
    weight: float  # its share of the questions
    make: Callable[[random.Random, dict], tuple[str, str]]


def _year(r: random.Random) -> int:
    return r.randint(2015, 2024)


TEMPLATES = [
    Template("customer_by_id", "bird_sales", "lookup", 0.14, lambda r, k: (lambda c: (
        f"What are the name and city of customer {c}?",
        f"SELECT name, city FROM customers WHERE customer_id = {c}"))(r.randint(1, k["customers"]))),
    Template("orders_of_customer", "bird_sales", "lookup", 0.14, lambda r, k: (lambda c: (
        f"How many orders of each status has customer {c} placed?",
        f"SELECT status, COUNT(*) FROM orders WHERE customer_id = {c} GROUP BY status ORDER BY status"))(
        r.randint(1, k["customers"]))),
    Template("product_lines", "bird_sales", "lookup", 0.1, lambda r, k: (lambda p: (
        f"How many units of product {p} were sold, and at what average unit price?",
        f"SELECT SUM(quantity), ROUND(AVG(unit_price) * 100) / 100 FROM order_lines WHERE product_id = {p}"))(
        r.randint(1, k["products"]))),
    Template("device_month", "bird_sensors", "lookup", 0.14, lambda r, k: (lambda d, kind: (
        f"What was the average {kind} reported by device {d} in each month?",
        f"SELECT SUBSTR(taken_at, 1, 7) AS month, ROUND(AVG(value) * 1000) / 1000 FROM readings WHERE device_id = {d} "
        f"AND kind = '{kind}' GROUP BY SUBSTR(taken_at, 1, 7) ORDER BY month"))(
        r.randint(1, k["devices"]), r.choice(KINDS))),
    Template("store_year", "bird_sales", "range", 0.12, lambda r, k: (lambda s, y: (
        f"How many orders did store {s} take in {y}, and what was their total value?",
        f"SELECT COUNT(*), ROUND(SUM(total) * 100) / 100 FROM orders WHERE store_id = {s} "
        f"AND order_date >= '{y}-01-01' AND order_date < '{y + 1}-01-01'"))(r.randint(1, 200), _year(r))),
    Template("city_customers", "bird_sales", "range", 0.1, lambda r, k: (lambda city, seg: (
        f"How many {seg} customers in {city} signed up in each year?",
        f"SELECT SUBSTR(signup_date, 1, 4) AS year, COUNT(*) FROM customers WHERE city = '{city}' AND segment = "
        f"'{seg}' GROUP BY SUBSTR(signup_date, 1, 4) ORDER BY year"))(
        r.choice([c for cs in REGIONS.values() for c in cs]), r.choice(SEGMENTS))),
    Template("kind_extremes", "bird_sensors", "range", 0.08, lambda r, k: (lambda kind, y: (
        f"What were the lowest and highest {kind} readings in {y}?",
        f"SELECT MIN(value), MAX(value) FROM readings WHERE kind = '{kind}' AND taken_at >= '{y}-01-01' "
        f"AND taken_at < '{y + 1}-01-01'"))(r.choice(KINDS), _year(r))),
    Template("category_top", "bird_sales", "join", 0.05, lambda r, k: (lambda cat, q: (
        f"Which five {cat} products sold the most units in orders of at least {q} of them?",
        "SELECT p.name, SUM(l.quantity) AS units FROM order_lines AS l JOIN products AS p ON p.product_id = "
        f"l.product_id WHERE p.category = '{cat}' AND l.quantity >= {q} GROUP BY p.product_id, p.name "
        "ORDER BY units DESC, p.name LIMIT 5"))(r.choice(CATEGORIES), r.randint(1, 5))),
    Template("region_segment", "bird_sales", "join", 0.05, lambda r, k: (lambda seg, y, m: (
        f"In each region, how many distinct {seg} customers ordered in the first {m} months of {y}?",
        "SELECT s.region, COUNT(DISTINCT o.customer_id) FROM orders AS o JOIN stores AS s ON s.store_id = "
        "o.store_id JOIN customers AS c ON c.customer_id = o.customer_id "
        f"WHERE c.segment = '{seg}' AND o.order_date >= '{y}-01-01' AND o.order_date < '{y}-{m + 1:02d}-01' "
        "GROUP BY s.region ORDER BY s.region"))(r.choice(SEGMENTS), _year(r), r.randint(1, 11))),
    Template("discounted_revenue", "bird_sales", "join", 0.02, lambda r, k: (lambda status, y: (
        f"What revenue after discounts came from {status} orders placed in {y}, per product category?",
        "SELECT p.category, ROUND(SUM(l.quantity * l.unit_price * (1 - COALESCE(l.discount, 0))) * 100) / 100 "
        "AS revenue "
        "FROM order_lines AS l JOIN orders AS o ON o.order_id = l.order_id JOIN products AS p ON p.product_id = "
        f"l.product_id WHERE o.status = '{status}' AND o.order_date >= '{y}-01-01' AND o.order_date < "
        f"'{y + 1}-01-01' GROUP BY p.category ORDER BY revenue DESC"))(r.choice(STATUSES), _year(r))),
    Template("country_kind", "bird_sensors", "join", 0.04, lambda r, k: (lambda kind, climate, y: (
        f"How many {kind} readings above the average were taken at {climate} sites in {y}, per country?",
        "SELECT si.country, COUNT(*) FROM readings AS r JOIN devices AS d ON d.device_id = r.device_id "
        f"JOIN sites AS si ON si.site_id = d.site_id WHERE r.kind = '{kind}' AND si.climate = '{climate}' "
        f"AND r.taken_at >= '{y}-01-01' AND r.taken_at < '{y + 1}-01-01' "
        f"AND r.value > (SELECT AVG(value) FROM readings WHERE kind = '{kind}') GROUP BY si.country "
        "ORDER BY si.country"))(r.choice(KINDS), r.choice(CLIMATES), _year(r))),
    Template("rising_pairs", "bird_sensors", "over_timeout", 0.01, lambda r, k: (lambda d, kind: (
        f"For device {d}, one of the busiest, how many pairs of its {kind} readings have the first lower than "
        "the second?",
        "SELECT COUNT(*) FROM readings AS a JOIN readings AS b ON a.device_id = b.device_id AND a.value < b.value "
        f"WHERE a.device_id = {d} AND a.kind = '{kind}'"))(r.choice(k["hot_devices"]), r.choice(KINDS))),
    Template("repeat_buyers", "bird_sales", "over_timeout", 0.01, lambda r, k: (lambda n: (
        f"How many pairs of orders by the same customer are more than {n} apart in their order ids?",
        "SELECT COUNT(*) FROM orders AS a JOIN orders AS b ON a.customer_id = b.customer_id "
        f"AND b.order_id > a.order_id + {n}"))(r.randint(1, 5000))),
]


def _facts(con_sensors: sqlite3.Connection, sizes: dict) -> dict:
    hot = [r[0] for r in con_sensors.execute(
        "SELECT device_id FROM readings GROUP BY device_id ORDER BY COUNT(*) DESC, device_id LIMIT 10")]
    return {**sizes, "hot_devices": hot}


def _questions(n: int, facts: dict, rng: random.Random) -> list[dict]:
    out, seen = [], set()
    weights = [t.weight for t in TEMPLATES]
    tries = 0
    while len(out) < n and tries < n * 20:
        tries += 1
        t = rng.choices(TEMPLATES, weights)[0]
        q, sql = t.make(rng, facts)
        if sql in seen:
            continue
        seen.add(sql)
        out.append({"db_id": t.db_id, "question": q, "query": sql, "template": t.name, "cost": t.cost})
    return out


# ---------------------------------------------------------------- the candidate workload

def _mutations(gold: str) -> dict[str, Callable[[random.Random], str | None]]:
    """What model samples get wrong, as edits of the gold; each returns None where it does not apply."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(gold, read="sqlite")

    def edit(fn):
        def apply(r: random.Random):
            t = tree.copy()
            return None if fn(t, r) is False else t.sql(dialect="sqlite")
        return apply

    def wrong_constant(t, r):
        lits = [x for x in t.find_all(exp.Literal) if not x.is_string and x.this.isdigit()]
        if not lits:
            return False
        lit = r.choice(lits)
        lit.replace(exp.Literal.number(int(lit.this) + r.randint(1, 9)))

    def unknown_column(t, r):
        cols = list(t.find_all(exp.Column))
        if not cols:
            return False
        col = r.choice(cols)
        col.set("this", exp.to_identifier(col.name + r.choice(["_name", "_id", "s", "_date"])))

    def unknown_table(t, r):
        tables = list(t.find_all(exp.Table))
        tables[0].set("this", exp.to_identifier(tables[0].name.rstrip("s") + "_info"))

    def dropped_filter(t, r):
        where = t.args.get("where")
        if where is None:
            return False
        t.set("where", None)

    def dropped_join_condition(t, r):
        joins = t.args.get("joins") or []
        if not joins:
            return False
        j = r.choice(joins)
        j.set("on", None)
        j.set("kind", "CROSS")

    return {"wrong_constant": edit(wrong_constant), "unknown_column": edit(unknown_column),
            "unknown_table": edit(unknown_table), "dropped_filter": edit(dropped_filter),
            "dropped_join_condition": edit(dropped_join_condition),
            "syntax": lambda r: gold.replace(" FROM ", r.choice([" FORM ", ", FROM ", " FROM FROM "]), 1),
            "respaced": lambda r: "  ".join(gold.split(" ")) if r.random() < .5 else gold.lower()}


# what a sample is, in proportions close to a small model's round-1 samples on BIRD: many exact
# repeats (best-of-8 at temperature 1 repeats itself), then errors, then wrong results
SAMPLE_KINDS = {"gold": .30, "repeat": .14, "respaced": .06, "wrong_constant": .16, "unknown_column": .16,
                "unknown_table": .06, "syntax": .06, "dropped_filter": .05, "dropped_join_condition": .01}


def workload(questions: list[dict], seed: int, split: str) -> list[dict]:
    rng = random.Random(f"{seed}/workload")
    out = []
    for qi, q in enumerate(questions):
        muts = _mutations(q["query"])
        texts: list[str] = []
        for s in range(SAMPLES_PER_QUESTION):
            kind = rng.choices(list(SAMPLE_KINDS), list(SAMPLE_KINDS.values()))[0]
            if kind == "gold":
                sql = q["query"]
            elif kind == "repeat":
                sql = rng.choice(texts) if texts else q["query"]
            else:
                sql = muts[kind](rng)
            if sql is None:  # the edit does not apply to this query: a wrong constant or the gold
                sql = muts["wrong_constant"](rng) or q["query"]
                kind = "wrong_constant" if sql != q["query"] else "gold"
            texts.append(sql)
            out.append({"id": f"{split}/{qi}/s{s}", "db_id": q["db_id"], "sql": sql, "gold_sql": q["query"],
                        "kind": kind, "cost": q["cost"]})
    return out


# ---------------------------------------------------------------- writing it

STAMP = "synth.json"
FILES = ("tables.json", "train_spider.json", "dev.json", "train_gold.sql", "dev_gold.sql", "workload.jsonl")


def _gold_cost_ms(con: sqlite3.Connection, sql: str, budget_s: float) -> float | None:
    """The gold's time on SQLite, or None past `budget_s` (stopped by the progress handler)."""
    deadline = time.perf_counter() + budget_s
    con.set_progress_handler(lambda: time.perf_counter() > deadline, 10_000)
    t0 = time.perf_counter()
    try:
        con.execute(sql).fetchall()
    except sqlite3.OperationalError as e:
        if "interrupted" in str(e):
            return None
        raise RuntimeError(f"bird synth gold fails on SQLite: {e}: {sql}") from e
    finally:
        con.set_progress_handler(None, 0)
    return (time.perf_counter() - t0) * 1e3


def synthesize_bird(out: str | Path, seed: int = 0, rows: int = 1_000_000, train: int = 2560, dev: int = 320,
                    check_per_template: int = 3, budget_s: float = 2.0, force: bool = False,
                    progress=lambda msg: None) -> dict:
    """Write the BIRD-sized dataset to `out` and return its summary; the same settings again
    are a no-op. `check_per_template` golds of each template run on SQLite while it is written
    (a failing one is our bug); their times go into the summary as the cost profile."""
    out = Path(out)
    params = {"version": BIRD_VERSION, "scale": "bird", "seed": seed, "rows": rows, "train": train, "dev": dev}
    if rows < 1000:
        raise UserError("--rows must be at least 1000")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: is a file, not a folder")
    stamp = out / STAMP
    if stamp.is_file() and json.loads(stamp.read_text()).get("params") == params:
        return json.loads(stamp.read_text())
    if out.exists() and any(out.iterdir()) and not force:
        raise UserError(f"{out} exists and was not written by `data synth --scale bird` with these settings "
                        "(use --force to replace what synth writes there)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        summary = _write(tmp, params, check_per_template, budget_s, progress)
        (out / "database").mkdir(parents=True, exist_ok=True)
        (out / STAMP).unlink(missing_ok=True)
        for db_id in DATABASES:
            shutil.rmtree(out / "database" / db_id, ignore_errors=True)
            (tmp / "database" / db_id).rename(out / "database" / db_id)
        for name in (*FILES, STAMP):
            (tmp / name).replace(out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary


def _write(root: Path, params: dict, check_per_template: int, budget_s: float, progress) -> dict:
    from exesql_ray.data.synth import spider_tables_entry

    seed, rows = params["seed"], params["rows"]
    cons, sizes, t0 = {}, {}, time.perf_counter()
    for db_id, build in (("bird_sales", build_sales), ("bird_sensors", build_sensors)):
        (root / "database" / db_id).mkdir(parents=True)
        con = cons[db_id] = sqlite3.connect(root / "database" / db_id / f"{db_id}.sqlite")
        con.execute("PRAGMA journal_mode = OFF")
        con.execute("PRAGMA synchronous = OFF")
        sizes[db_id] = build(con, np.random.default_rng([seed, DATABASES.index(db_id)]), rows)
        con.commit()
        progress(f"{db_id}: {sizes[db_id]}")
    facts = _facts(cons["bird_sensors"], {**sizes["bird_sales"], **sizes["bird_sensors"]})
    rng = random.Random(seed)
    questions = _questions(params["train"] + params["dev"], facts, rng)
    splits = {"train": questions[:params["train"]], "dev": questions[params["train"]:]}
    cost: dict[str, list] = {}
    for t in TEMPLATES:
        checked = [q for q in questions if q["template"] == t.name][:check_per_template]
        for q in checked:
            ms = _gold_cost_ms(cons[q["db_id"]], q["query"], budget_s)
            cost.setdefault(t.name, []).append(None if ms is None else round(ms, 1))
    (root / "tables.json").write_text(json.dumps([spider_tables_entry(d, cons[d]) for d in DATABASES], indent=1))
    for con in cons.values():
        con.close()
    (root / "train_spider.json").write_text(json.dumps(splits["train"], indent=1))
    (root / "dev.json").write_text(json.dumps(splits["dev"], indent=1))
    for name, key in (("train_gold.sql", "train"), ("dev_gold.sql", "dev")):
        (root / name).write_text("".join(f"{r['query']}\t{r['db_id']}\n" for r in splits[key]))
    cands = workload(splits["train"], seed, "train")
    with open(root / "workload.jsonl", "w") as f:
        f.writelines(json.dumps(c) + "\n" for c in cands)
    kinds: dict[str, int] = {}
    for c in cands:
        kinds[c["kind"]] = kinds.get(c["kind"], 0) + 1
    summary = {"params": params, "dbs": list(DATABASES), "rows": sizes, "train": len(splits["train"]),
               "dev": len(splits["dev"]), "workload": len(cands), "distinct_sql": len({c["sql"] for c in cands}),
               "sample_kinds": dict(sorted(kinds.items())),
               "cost_classes": {c: sum(q["cost"] == c for q in questions) for c in
                                ("lookup", "range", "join", "over_timeout")},
               "sqlite_gold_ms": cost, "gold_budget_s": budget_s, "seconds": round(time.perf_counter() - t0, 1)}
    (root / STAMP).write_text(json.dumps(summary, indent=1))
    return summary
