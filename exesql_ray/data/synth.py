"""`exesql-ray data synth`: a small Spider-layout dataset of our own, deterministic per seed.

The quickstart trains and evaluates on it, so `make demo` needs no outside data. Three SQLite
databases with realistic tables and values; questions and gold SQL come from templates chosen
to cover the SQL that differs across dialects: string concatenation, LIKE case, integer
division, dates, NULL ordering, GROUP BY/HAVING, LIMIT/OFFSET, set operations, CASE/IIF, CAST,
double-quoted string literals, subqueries and joins. Every gold query is run on SQLite while
the dataset is written; a template that fails is a bug and stops the build.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Callable

from exesql_ray.errors import UserError

SYNTH_VERSION = 1

FIRST = ["Anna", "Ben", "Carla", "David", "Elena", "Farid", "Grace", "Hugo", "Irene", "Jonas", "Kira", "Liam",
         "Maya", "Nils", "Olga", "Pedro", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera", "Wei", "Yusuf", "Zoe"]
LAST = ["Smith", "Garcia", "Muller", "Rossi", "Nowak", "Kim", "Silva", "Dubois", "Jensen", "Okafor", "Tanaka",
        "Novak", "Larsen", "Moreau", "Costa", "Ivanova", "Brown", "Sato", "Haddad", "Fischer"]
CITIES = [("Lisbon", "Portugal"), ("Porto", "Portugal"), ("Madrid", "Spain"), ("Seville", "Spain"),
          ("Lyon", "France"), ("Paris", "France"), ("Berlin", "Germany"), ("Munich", "Germany"),
          ("Krakow", "Poland"), ("Warsaw", "Poland"), ("Osaka", "Japan"), ("Tokyo", "Japan")]
PRODUCTS = {
    "Electronics": ["Wireless Mouse", "USB Keyboard", "Noise Cancelling Headphones", "Webcam HD", "Smart Speaker",
                    "Portable Charger", "Bluetooth Adapter"],
    "Books": ["The Silent River", "Data for Everyone", "A Short History of Maps", "Cooking with Herbs",
              "The Last Lighthouse", "Learning SQL Fast"],
    "Garden": ["Garden Hose", "Pruning Shears", "Flower Seeds Mix", "Compost Bin", "Watering Can"],
    "Kitchen": ["Chef Knife", "Cast Iron Pan", "Coffee Grinder", "Salad Bowl", "Tea Kettle", "Cutting Board"],
    "Sports": ["Yoga Mat", "Running Shoes", "Tennis Racket", "Water Bottle", "Jump Rope"],
}
STATUSES = ["shipped", "delivered", "cancelled", "pending"]
DEPARTMENTS = ["Mathematics", "Physics", "History", "Biology", "Literature"]
COURSE_WORDS = {
    "Mathematics": ["Linear Algebra", "Calculus I", "Calculus II", "Probability", "Number Theory"],
    "Physics": ["Mechanics", "Electromagnetism", "Quantum Physics", "Thermodynamics"],
    "History": ["Ancient Rome", "Modern Europe", "History of Science", "World War Studies"],
    "Biology": ["Genetics", "Cell Biology", "Ecology", "Marine Biology"],
    "Literature": ["Poetry Workshop", "The Modern Novel", "Drama and Theatre", "World Literature"],
}
SEMESTERS = ["2021-fall", "2022-spring", "2022-fall", "2023-spring"]
AIRPORTS = [("LIS", "Humberto Delgado", "Lisbon", "Portugal"), ("OPO", "Francisco Sa Carneiro", "Porto", "Portugal"),
            ("MAD", "Barajas", "Madrid", "Spain"), ("CDG", "Charles de Gaulle", "Paris", "France"),
            ("LYS", "Saint Exupery", "Lyon", "France"), ("BER", "Brandenburg", "Berlin", "Germany"),
            ("MUC", "Franz Josef Strauss", "Munich", "Germany"), ("WAW", "Chopin", "Warsaw", "Poland"),
            ("KIX", "Kansai International", "Osaka", "Japan"), ("HND", "Haneda", "Tokyo", "Japan")]
AIRLINES = [("Atlantic Wings", "Portugal"), ("Iberia Sky", "Spain"), ("Air Lumiere", "France"),
            ("Nordflug", "Germany"), ("Vistula Air", "Poland"), ("Sakura Airways", "Japan")]


def _day(rng: random.Random, start: date, span_days: int) -> str:
    return (start + timedelta(days=rng.randrange(span_days))).isoformat()


# ---------------------------------------------------------------- databases

def build_retail(con: sqlite3.Connection, rng: random.Random) -> None:
    con.executescript(
        """
        CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, first_name TEXT NOT NULL, last_name TEXT NOT NULL,
          email TEXT, city TEXT, country TEXT, signup_date TEXT, loyalty_points INTEGER);
        CREATE TABLE products (product_id INTEGER PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL,
          price REAL NOT NULL, stock INTEGER NOT NULL);
        CREATE TABLE orders (order_id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(customer_id),
          order_date TEXT NOT NULL, status TEXT NOT NULL, discount REAL);
        CREATE TABLE order_items (order_id INTEGER NOT NULL REFERENCES orders(order_id),
          product_id INTEGER NOT NULL REFERENCES products(product_id), quantity INTEGER NOT NULL,
          unit_price REAL NOT NULL, PRIMARY KEY (order_id, product_id));
        """
    )
    for i in range(1, 41):
        f, l = rng.choice(FIRST), rng.choice(LAST)
        city, country = rng.choice(CITIES)
        points = None if rng.random() < 0.2 else rng.randrange(0, 500, 10)
        con.execute("INSERT INTO customers VALUES (?,?,?,?,?,?,?,?)",
                    (i, f, l, f"{f.lower()}.{l.lower()}{i}@example.com", city, country,
                     _day(rng, date(2019, 1, 1), 1500), points))
    pid = 0
    for cat, names in PRODUCTS.items():
        for name in names:
            pid += 1
            con.execute("INSERT INTO products VALUES (?,?,?,?,?)",
                        (pid, name, cat, round(rng.uniform(3, 250), 2), rng.randrange(0, 120)))
    for oid in range(1, 121):
        disc = None if rng.random() < 0.6 else rng.choice([0.05, 0.1, 0.15, 0.2])
        con.execute("INSERT INTO orders VALUES (?,?,?,?,?)",
                    (oid, rng.randrange(1, 41), _day(rng, date(2021, 1, 1), 1000), rng.choice(STATUSES), disc))
        for p in rng.sample(range(1, pid + 1), rng.randrange(1, 4)):
            price = con.execute("SELECT price FROM products WHERE product_id=?", (p,)).fetchone()[0]
            con.execute("INSERT INTO order_items VALUES (?,?,?,?)", (oid, p, rng.randrange(1, 6), price))


def build_school(con: sqlite3.Connection, rng: random.Random) -> None:
    con.executescript(
        """
        CREATE TABLE teachers (teacher_id INTEGER PRIMARY KEY, name TEXT NOT NULL, department TEXT NOT NULL,
          hire_date TEXT NOT NULL, salary INTEGER NOT NULL);
        CREATE TABLE courses (course_id INTEGER PRIMARY KEY, title TEXT NOT NULL, department TEXT NOT NULL,
          credits INTEGER NOT NULL, teacher_id INTEGER REFERENCES teachers(teacher_id));
        CREATE TABLE students (student_id INTEGER PRIMARY KEY, name TEXT NOT NULL, birth_date TEXT, gpa REAL,
          city TEXT);
        CREATE TABLE enrollments (student_id INTEGER NOT NULL REFERENCES students(student_id),
          course_id INTEGER NOT NULL REFERENCES courses(course_id), semester TEXT NOT NULL, grade INTEGER,
          PRIMARY KEY (student_id, course_id, semester));
        """
    )
    tid = 0
    for dept in DEPARTMENTS:
        for _ in range(3):
            tid += 1
            con.execute("INSERT INTO teachers VALUES (?,?,?,?,?)",
                        (tid, f"{rng.choice(FIRST)} {rng.choice(LAST)}", dept, _day(rng, date(2005, 1, 1), 6000),
                         rng.randrange(38000, 95000, 500)))
    cid = 0
    for dept, titles in COURSE_WORDS.items():
        for title in titles:
            cid += 1
            teacher = rng.choice([t for (t,) in con.execute("SELECT teacher_id FROM teachers WHERE department=?", (dept,))])
            con.execute("INSERT INTO courses VALUES (?,?,?,?,?)", (cid, title, dept, rng.choice([3, 4, 5, 6]), teacher))
    for sid in range(1, 61):
        gpa = None if rng.random() < 0.15 else round(rng.uniform(1.8, 4.0), 2)
        con.execute("INSERT INTO students VALUES (?,?,?,?,?)",
                    (sid, f"{rng.choice(FIRST)} {rng.choice(LAST)}", _day(rng, date(1998, 1, 1), 2500), gpa,
                     rng.choice(CITIES)[0]))
        for c in rng.sample(range(1, cid + 1), rng.randrange(1, 5)):
            grade = None if rng.random() < 0.1 else rng.randrange(40, 101)
            con.execute("INSERT INTO enrollments VALUES (?,?,?,?)", (sid, c, rng.choice(SEMESTERS), grade))


def build_flights(con: sqlite3.Connection, rng: random.Random) -> None:
    con.executescript(
        """
        CREATE TABLE airports (code TEXT PRIMARY KEY, name TEXT NOT NULL, city TEXT NOT NULL, country TEXT NOT NULL);
        CREATE TABLE airlines (airline_id INTEGER PRIMARY KEY, name TEXT NOT NULL, country TEXT NOT NULL);
        CREATE TABLE flights (flight_id INTEGER PRIMARY KEY, airline_id INTEGER NOT NULL REFERENCES airlines(airline_id),
          origin TEXT NOT NULL REFERENCES airports(code), destination TEXT NOT NULL REFERENCES airports(code),
          departure TEXT NOT NULL, duration_min INTEGER NOT NULL, price REAL NOT NULL, seats INTEGER,
          status TEXT NOT NULL);
        """
    )
    con.executemany("INSERT INTO airports VALUES (?,?,?,?)", AIRPORTS)
    con.executemany("INSERT INTO airlines VALUES (?,?,?)", [(i + 1, n, c) for i, (n, c) in enumerate(AIRLINES)])
    codes = [a[0] for a in AIRPORTS]
    for fid in range(1, 151):
        o, d = rng.sample(codes, 2)
        dep = datetime(2023, 1, 1, 6) + timedelta(days=rng.randrange(365), minutes=15 * rng.randrange(64))
        seats = None if rng.random() < 0.1 else rng.randrange(0, 40)
        con.execute("INSERT INTO flights VALUES (?,?,?,?,?,?,?,?,?)",
                    (fid, rng.randrange(1, len(AIRLINES) + 1), o, d, dep.strftime("%Y-%m-%d %H:%M:%S"),
                     rng.randrange(45, 800, 5), round(rng.uniform(29, 900), 2), seats,
                     rng.choice(["on time", "delayed", "cancelled"])))


# ---------------------------------------------------------------- templates

@dataclass(frozen=True)
class Template:
    name: str
    feature: str
    make: Callable[[random.Random, sqlite3.Connection], tuple[str, str]]


def _pick(con, rng, sql):
    return rng.choice([r[0] for r in con.execute(sql)])


def _q(v: str) -> str:
    return v.replace("'", "''")


RETAIL = [
    Template("concat", "string concatenation", lambda r, c: (lambda city: (
        f"List the full names of the customers who live in {city}.",
        f"SELECT first_name || ' ' || last_name FROM customers WHERE city = '{city}'"))(
        _pick(c, r, "SELECT DISTINCT city FROM customers"))),
    Template("like_case", "LIKE case", lambda r, c: (lambda w: (
        f"Which products have '{w}' in their name?",
        f"SELECT name FROM products WHERE name LIKE '%{w.lower()}%'"))(
        r.choice(["Mouse", "Pan", "Bin", "Mat", "River", "Can", "Shoes", "Knife"]))),
    Template("int_div", "integer division", lambda r, c: (lambda s: (
        f"On average, how many items (rounded down to a whole number) does an order with status {s} contain?",
        "SELECT SUM(T2.quantity) / COUNT(DISTINCT T1.order_id) FROM orders AS T1 JOIN order_items AS T2 "
        f"ON T1.order_id = T2.order_id WHERE T1.status = '{s}'"))(r.choice(STATUSES))),
    Template("year", "dates", lambda r, c: (lambda y: (
        f"How many orders were placed in {y}?",
        f"SELECT COUNT(*) FROM orders WHERE strftime('%Y', order_date) = '{y}'"))(r.choice(["2021", "2022", "2023"]))),
    Template("date_range", "dates", lambda r, c: (lambda m: (
        f"Which orders were placed in the first {m} months of 2022? Give their ids and dates.",
        f"SELECT order_id, order_date FROM orders WHERE order_date >= '2022-01-01' AND order_date < '2022-{m + 1:02d}-01' "
        "ORDER BY order_date"))(r.randrange(1, 7))),
    Template("days_between", "date arithmetic", lambda r, c: (lambda cid: (
        f"How many days passed between the first and the last order of the customer with id {cid}?",
        f"SELECT julianday(MAX(order_date)) - julianday(MIN(order_date)) FROM orders WHERE customer_id = {cid}"))(
        _pick(c, r, "SELECT customer_id FROM orders GROUP BY customer_id HAVING COUNT(*) > 1"))),
    Template("null_order", "NULL ordering", lambda r, c: (lambda ctry: (
        f"List the last names and loyalty points of customers from {ctry}, from fewest to most points.",
        f"SELECT last_name, loyalty_points FROM customers WHERE country = '{ctry}' ORDER BY loyalty_points"))(
        _pick(c, r, "SELECT DISTINCT country FROM customers"))),
    Template("group_count", "GROUP BY", lambda r, c: (
        "How many customers are there in each country?",
        "SELECT country, COUNT(*) FROM customers GROUP BY country")),
    Template("having", "GROUP BY/HAVING", lambda r, c: (lambda k: (
        f"Which product categories have more than {k} products?",
        f"SELECT category FROM products GROUP BY category HAVING COUNT(*) > {k}"))(r.randrange(4, 7))),
    Template("limit_offset", "LIMIT/OFFSET", lambda r, c: (lambda k, m: (
        f"Skipping the {m} most expensive products, what are the names and prices of the next {k}?",
        f"SELECT name, price FROM products ORDER BY price DESC LIMIT {k} OFFSET {m}"))(r.randrange(2, 5), r.randrange(1, 6))),
    Template("union", "set operations", lambda r, c: (lambda a, b: (
        f"Which cities have customers from {a} or from {b}?",
        f"SELECT city FROM customers WHERE country = '{a}' UNION SELECT city FROM customers WHERE country = '{b}'"))(
        *r.sample(sorted({x[1] for x in CITIES}), 2))),
    Template("except", "set operations", lambda r, c: (lambda s: (
        f"What are the ids of customers who never had an order with status {s}?",
        f"SELECT customer_id FROM customers EXCEPT SELECT customer_id FROM orders WHERE status = '{s}'"))(
        r.choice(STATUSES))),
    Template("intersect", "set operations", lambda r, c: (lambda p, s: (
        f"Which categories have both a product priced above {p} and a product with fewer than {s} items in stock?",
        f"SELECT category FROM products WHERE price > {p} INTERSECT SELECT category FROM products WHERE stock < {s}"))(
        r.choice([50, 100, 150]), r.choice([10, 20, 30]))),
    Template("case", "CASE", lambda r, c: (lambda cid: (
        f"For each order of the customer with id {cid}, show the order id and whether it was discounted (yes or no).",
        f"SELECT order_id, CASE WHEN discount IS NULL THEN 'no' ELSE 'yes' END FROM orders WHERE customer_id = {cid}"))(
        _pick(c, r, "SELECT DISTINCT customer_id FROM orders"))),
    Template("iif", "IIF", lambda r, c: (lambda s: (
        f"How many orders with status {s} had a discount of at least 10 percent?",
        f"SELECT SUM(IIF(discount >= 0.1, 1, 0)) FROM orders WHERE status = '{s}'"))(r.choice(STATUSES))),
    Template("cast_share", "CAST", lambda r, c: (lambda s: (
        f"What percentage of all orders have the status {s}?",
        f"SELECT CAST(SUM(CASE WHEN status = '{s}' THEN 1 ELSE 0 END) AS REAL) * 100 / COUNT(*) FROM orders"))(
        r.choice(STATUSES))),
    Template("dq_literal", "double-quoted string literal", lambda r, c: (lambda cat: (
        f"What is the average price of products in the {cat} category?",
        f'SELECT avg(price) FROM products WHERE category = "{cat}"'))(r.choice(list(PRODUCTS)))),
    Template("revenue_join", "join + aggregate", lambda r, c: (lambda cat: (
        f"What is the total revenue from {cat} products?",
        "SELECT SUM(T1.quantity * T1.unit_price) FROM order_items AS T1 JOIN products AS T2 "
        f"ON T1.product_id = T2.product_id WHERE T2.category = '{cat}'"))(r.choice(list(PRODUCTS)))),
    Template("above_avg", "subquery", lambda r, c: (lambda cat: (
        f"Which {cat} products cost more than the average price of all products?",
        f"SELECT name FROM products WHERE category = '{cat}' AND price > (SELECT avg(price) FROM products)"))(
        r.choice(list(PRODUCTS)))),
]

SCHOOL = [
    Template("concat", "string concatenation", lambda r, c: (lambda d: (
        f"Show each {d} course as its title followed by its credits in parentheses.",
        f"SELECT title || ' (' || credits || ')' FROM courses WHERE department = '{d}'"))(r.choice(DEPARTMENTS))),
    Template("like_case", "LIKE case", lambda r, c: (lambda w: (
        f"Which courses have a title containing '{w}'?",
        f"SELECT title FROM courses WHERE title LIKE '%{w.lower()}%'"))(
        r.choice(["Physics", "History", "Biology", "Modern", "Calculus", "World"]))),
    Template("int_div", "integer division", lambda r, c: (lambda d: (
        f"What is the average monthly salary of {d} teachers, as a whole number (yearly salary over 12, rounded down)?",
        f"SELECT SUM(salary) / 12 / COUNT(*) FROM teachers WHERE department = '{d}'"))(r.choice(DEPARTMENTS))),
    Template("credits_div", "integer division", lambda r, c: (lambda d: (
        f"How many courses does each teacher of the {d} department teach on average, rounded down?",
        f"SELECT COUNT(*) / COUNT(DISTINCT teacher_id) FROM courses WHERE department = '{d}'"))(r.choice(DEPARTMENTS))),
    Template("year", "dates", lambda r, c: (lambda y: (
        f"How many teachers were hired before {y}?",
        f"SELECT COUNT(*) FROM teachers WHERE strftime('%Y', hire_date) < '{y}'"))(r.choice(["2008", "2012", "2015"]))),
    Template("age", "date arithmetic", lambda r, c: (lambda sid: (
        f"How old in whole years was the student with id {sid} on 2024-01-01?",
        f"SELECT CAST((julianday('2024-01-01') - julianday(birth_date)) / 365.25 AS INTEGER) FROM students "
        f"WHERE student_id = {sid}"))(r.randrange(1, 61))),
    Template("null_order", "NULL ordering", lambda r, c: (lambda city: (
        f"List the names and GPAs of students from {city}, highest GPA first.",
        f"SELECT name, gpa FROM students WHERE city = '{city}' ORDER BY gpa DESC"))(
        _pick(c, r, "SELECT DISTINCT city FROM students"))),
    Template("group_avg", "GROUP BY", lambda r, c: (
        "What is the average grade in each semester?",
        "SELECT semester, AVG(grade) FROM enrollments GROUP BY semester")),
    Template("having", "GROUP BY/HAVING", lambda r, c: (lambda k: (
        f"Which students are enrolled in at least {k} courses? Give their ids.",
        f"SELECT student_id FROM enrollments GROUP BY student_id HAVING COUNT(DISTINCT course_id) >= {k}"))(
        r.randrange(3, 5))),
    Template("limit_offset", "LIMIT/OFFSET", lambda r, c: (lambda k, m: (
        f"After the {m} best paid teachers, who are the next {k}? Give names and salaries.",
        f"SELECT name, salary FROM teachers ORDER BY salary DESC LIMIT {k} OFFSET {m}"))(r.randrange(2, 4), r.randrange(1, 5))),
    Template("union", "set operations", lambda r, c: (lambda a, b: (
        f"Which teachers teach in {a} or earn more than {b}? Give their names.",
        f"SELECT name FROM teachers WHERE department = '{a}' UNION SELECT name FROM teachers WHERE salary > {b}"))(
        r.choice(DEPARTMENTS), r.choice([80000, 85000, 90000]))),
    Template("except", "set operations", lambda r, c: (lambda d: (
        f"Which students never took a {d} course? Give their ids.",
        "SELECT student_id FROM students EXCEPT SELECT T1.student_id FROM enrollments AS T1 JOIN courses AS T2 "
        f"ON T1.course_id = T2.course_id WHERE T2.department = '{d}'"))(r.choice(DEPARTMENTS))),
    Template("case", "CASE", lambda r, c: (lambda cid: (
        f"For course {cid}, list each student id with 'pass' if the grade is 50 or more and 'fail' otherwise.",
        f"SELECT student_id, CASE WHEN grade >= 50 THEN 'pass' ELSE 'fail' END FROM enrollments WHERE course_id = {cid}"))(
        _pick(c, r, "SELECT DISTINCT course_id FROM enrollments"))),
    Template("iif", "IIF", lambda r, c: (lambda s: (
        f"How many enrollments in semester {s} have no grade yet?",
        f"SELECT SUM(IIF(grade IS NULL, 1, 0)) FROM enrollments WHERE semester = '{s}'"))(r.choice(SEMESTERS))),
    Template("cast", "CAST", lambda r, c: (lambda d: (
        f"What is the average number of credits of {d} courses, as a decimal number?",
        f"SELECT CAST(SUM(credits) AS REAL) / COUNT(*) FROM courses WHERE department = '{d}'"))(r.choice(DEPARTMENTS))),
    Template("dq_literal", "double-quoted string literal", lambda r, c: (lambda d: (
        f"How many courses does the {d} department offer?",
        f'SELECT count(*) FROM courses WHERE department = "{d}"'))(r.choice(DEPARTMENTS))),
    Template("join", "join", lambda r, c: (lambda t: (
        f"Which courses does {t} teach?",
        "SELECT T2.title FROM teachers AS T1 JOIN courses AS T2 ON T1.teacher_id = T2.teacher_id "
        f"WHERE T1.name = '{_q(t)}'"))(_pick(c, r, "SELECT T1.name FROM teachers AS T1 JOIN courses AS T2 ON T1.teacher_id = T2.teacher_id"))),
    Template("above_avg", "subquery", lambda r, c: (lambda city: (
        f"Which students from {city} have a GPA above the average GPA?",
        f"SELECT name FROM students WHERE city = '{city}' AND gpa > (SELECT avg(gpa) FROM students)"))(
        _pick(c, r, "SELECT DISTINCT city FROM students"))),
]

FLIGHTS = [
    Template("concat", "string concatenation", lambda r, c: (lambda ctry: (
        f"Show the airports of {ctry} as their code, a dash and their city.",
        f"SELECT code || '-' || city FROM airports WHERE country = '{ctry}'"))(r.choice(sorted({a[3] for a in AIRPORTS})))),
    Template("like_case", "LIKE case", lambda r, c: (lambda w: (
        f"Which airlines have '{w}' in their name?",
        f"SELECT name FROM airlines WHERE name LIKE '%{w.lower()}%'"))(r.choice(["Air", "Sky", "Wings", "Flug"]))),
    Template("hours", "integer division", lambda r, c: (lambda o: (
        f"For flights leaving {o}, what are the flight ids and their durations in whole hours?",
        f"SELECT flight_id, duration_min / 60 FROM flights WHERE origin = '{o}'"))(r.choice([a[0] for a in AIRPORTS]))),
    Template("month", "dates", lambda r, c: (lambda m: (
        f"How many flights depart in month {m} of 2023?",
        f"SELECT COUNT(*) FROM flights WHERE strftime('%m', departure) = '{m:02d}'"))(r.randrange(1, 13))),
    Template("arrival", "date arithmetic", lambda r, c: (lambda fid: (
        f"When does flight {fid} arrive?",
        f"SELECT datetime(departure, '+' || duration_min || ' minutes') FROM flights WHERE flight_id = {fid}"))(
        r.randrange(1, 151))),
    Template("null_order", "NULL ordering", lambda r, c: (lambda d: (
        f"List the ids and free seats of flights to {d}, fewest free seats first.",
        f"SELECT flight_id, seats FROM flights WHERE destination = '{d}' ORDER BY seats, flight_id"))(
        r.choice([a[0] for a in AIRPORTS]))),
    Template("group_count", "GROUP BY", lambda r, c: (
        "How many flights does each airline operate? Give the airline id and the count.",
        "SELECT airline_id, COUNT(*) FROM flights GROUP BY airline_id")),
    Template("having", "GROUP BY/HAVING", lambda r, c: (lambda p: (
        f"Which destinations have an average ticket price above {p}?",
        f"SELECT destination FROM flights GROUP BY destination HAVING AVG(price) > {p}"))(r.choice([400, 450, 500]))),
    Template("limit_offset", "LIMIT/OFFSET", lambda r, c: (lambda k, m: (
        f"Skipping the {m} cheapest flights, which are the next {k}? Give ids and prices.",
        f"SELECT flight_id, price FROM flights ORDER BY price LIMIT {k} OFFSET {m}"))(r.randrange(2, 5), r.randrange(1, 6))),
    Template("union", "set operations", lambda r, c: (lambda a: (
        f"Which airports are used by flights of airline {a}, as origin or destination?",
        f"SELECT origin FROM flights WHERE airline_id = {a} UNION SELECT destination FROM flights WHERE airline_id = {a}"))(
        r.randrange(1, len(AIRLINES) + 1))),
    Template("intersect", "set operations", lambda r, c: (lambda a, b: (
        f"Which destinations are served by both airline {a} and airline {b}?",
        f"SELECT destination FROM flights WHERE airline_id = {a} INTERSECT SELECT destination FROM flights WHERE airline_id = {b}"))(
        *r.sample(range(1, len(AIRLINES) + 1), 2))),
    Template("case", "CASE", lambda r, c: (lambda o: (
        f"For flights from {o}, show each flight id and 'long' if it takes more than 3 hours, else 'short'.",
        f"SELECT flight_id, CASE WHEN duration_min > 180 THEN 'long' ELSE 'short' END FROM flights WHERE origin = '{o}'"))(
        r.choice([a[0] for a in AIRPORTS]))),
    Template("iif", "IIF", lambda r, c: (lambda a: (
        f"How many flights of airline {a} were delayed?",
        f"SELECT SUM(IIF(status = 'delayed', 1, 0)) FROM flights WHERE airline_id = {a}"))(r.randrange(1, len(AIRLINES) + 1))),
    Template("cast_share", "CAST", lambda r, c: (lambda s: (
        f"What share of all flights (as a fraction) have the status {s}?",
        f"SELECT CAST(COUNT(CASE WHEN status = '{s}' THEN 1 END) AS REAL) / COUNT(*) FROM flights"))(
        r.choice(["on time", "delayed", "cancelled"]))),
    Template("dq_literal", "double-quoted string literal", lambda r, c: (lambda ctry: (
        f"How many airports are there in {ctry}?",
        f'SELECT count(*) FROM airports WHERE country = "{ctry}"'))(r.choice(sorted({a[3] for a in AIRPORTS})))),
    Template("join_city", "join", lambda r, c: (lambda a, b: (
        f"What are the ids and prices of flights from {a} to {b}?",
        "SELECT T1.flight_id, T1.price FROM flights AS T1 JOIN airports AS T2 ON T1.origin = T2.code "
        f"JOIN airports AS T3 ON T1.destination = T3.code WHERE T2.city = '{a}' AND T3.city = '{b}'"))(
        *r.sample([a[2] for a in AIRPORTS], 2))),
    Template("airline_avg", "join + aggregate", lambda r, c: (lambda ctry: (
        f"What is the average ticket price of airlines based in {ctry}?",
        "SELECT AVG(T1.price) FROM flights AS T1 JOIN airlines AS T2 ON T1.airline_id = T2.airline_id "
        f"WHERE T2.country = '{ctry}'"))(r.choice([a[1] for a in AIRLINES]))),
    Template("above_avg", "subquery", lambda r, c: (lambda o: (
        f"Which flights from {o} cost more than the average flight? Give their ids.",
        f"SELECT flight_id FROM flights WHERE origin = '{o}' AND price > (SELECT avg(price) FROM flights)"))(
        r.choice([a[0] for a in AIRPORTS]))),
]

DATABASES = {
    "retail_shop": (build_retail, RETAIL),
    "school_records": (build_school, SCHOOL),
    "flight_network": (build_flights, FLIGHTS),
}


# ---------------------------------------------------------------- Spider layout

def spider_tables_entry(db_id: str, con: sqlite3.Connection) -> dict:
    """A tables.json entry (Spider's format) read off the SQLite schema."""
    tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY rowid")]
    cols, types, pks, fk_raw = [[-1, "*"]], ["text"], [], []
    index = {}
    for ti, t in enumerate(tables):
        for cid, name, ctype, _nn, _d, pk in con.execute(f'PRAGMA table_info("{t}")'):
            index[(t.lower(), name.lower())] = len(cols)
            cols.append([ti, name])
            ct = ctype.upper()
            types.append("number" if ("INT" in ct or "REAL" in ct or "NUM" in ct) else "text")
            if pk:
                pks.append(len(cols) - 1)
        for row in con.execute(f'PRAGMA foreign_key_list("{t}")'):
            fk_raw.append((t, row[3], row[2], row[4]))
    fks = [[index[(t.lower(), c.lower())], index[(rt.lower(), rc.lower())]] for t, c, rt, rc in fk_raw]
    return {
        "db_id": db_id,
        "table_names_original": tables,
        "table_names": [t.replace("_", " ") for t in tables],
        "column_names_original": cols,
        "column_names": [[ti, n if n == "*" else n.replace("_", " ")] for ti, n in cols],
        "column_types": types,
        "primary_keys": pks,
        "foreign_keys": fks,
    }


def _instances(tpl: Template, con, rng: random.Random, want: int) -> list[tuple[str, str]]:
    seen, out = set(), []
    for _ in range(want * 8):
        q, sql = tpl.make(rng, con)
        if sql in seen:
            continue
        seen.add(sql)
        out.append((q, sql))
        if len(out) == want:
            break
    return out


SYNTH_FILES = ("tables.json", "train_spider.json", "dev.json", "train_gold.sql", "dev_gold.sql")
STAMP = "synth.json"


def synthesize(out: str | Path, seed: int = 0, per_template: int = 4, dev_share: float = 0.25, force: bool = False) -> dict:
    """Write the dataset to `out`; return a summary. Re-running with the same settings is a
    no-op. `force` replaces what an earlier synth wrote there (its files and its databases)
    and nothing else: other files in `out` stay."""
    out = Path(out)
    params = {"version": SYNTH_VERSION, "seed": seed, "per_template": per_template, "dev_share": dev_share}
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: is a file, not a folder")
    stamp = out / STAMP
    if stamp.is_file():
        done = json.loads(stamp.read_text())
        if done.get("params") == params:
            return done
    if out.exists() and any(out.iterdir()) and not force:
        raise UserError(f"{out} exists and was not written by `data synth` with these settings (use --force to "
                        "replace what synth writes there)")
    if per_template < 2:
        raise UserError("--per-template must be at least 2 (one train and one dev question per template)")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as e:
        raise UserError(f"--out {out}: cannot write in {out.parent} ({e.strerror})") from None
    try:
        summary = _write(tmp, seed, per_template, dev_share, params)
        _put_in_place(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary


def _put_in_place(built: Path, out: Path) -> None:
    """Move synth's own entries from `built` into `out`, replacing only those: the files it
    writes and database/<db_id> for its databases; the stamp last, so that a crash midway
    leaves no stamp that claims the new data."""
    (out / "database").mkdir(parents=True, exist_ok=True)
    (out / STAMP).unlink(missing_ok=True)
    for db_id in DATABASES:
        target = out / "database" / db_id
        if target.exists():
            shutil.rmtree(target)
        (built / "database" / db_id).rename(target)
    for name in (*SYNTH_FILES, STAMP):
        os.replace(built / name, out / name)


def _write(root: Path, seed: int, per_template: int, dev_share: float, params: dict) -> dict:
    rng = random.Random(seed)
    tables, splits = [], {"train": [], "dev": []}
    features: dict[str, int] = {}
    for db_id, (build, templates) in DATABASES.items():
        db_dir = root / "database" / db_id
        db_dir.mkdir(parents=True)
        path = db_dir / f"{db_id}.sqlite"
        con = sqlite3.connect(path)
        build(con, random.Random(f"{seed}/{db_id}"))
        con.commit()
        tables.append(spider_tables_entry(db_id, con))
        for tpl in templates:
            inst = _instances(tpl, con, random.Random(f"{seed}/{db_id}/{tpl.name}"), per_template)
            n_dev = max(1, round(len(inst) * dev_share)) if len(inst) > 1 else 0
            for i, (q, sql) in enumerate(inst):
                try:
                    con.execute(sql).fetchall()
                except sqlite3.Error as e:  # a broken template is our bug: stop loudly
                    raise RuntimeError(f"synth template {db_id}/{tpl.name} fails on SQLite: {e}: {sql}") from e
                split = "dev" if i >= len(inst) - n_dev else "train"
                splits[split].append({"db_id": db_id, "question": q, "query": sql, "template": tpl.name,
                                      "feature": tpl.feature})
                features[tpl.feature] = features.get(tpl.feature, 0) + 1
        con.close()
    rng.shuffle(splits["train"])
    (root / "tables.json").write_text(json.dumps(tables, indent=1))
    (root / "train_spider.json").write_text(json.dumps(splits["train"], indent=1))
    (root / "dev.json").write_text(json.dumps(splits["dev"], indent=1))
    for name, key in (("train_gold.sql", "train"), ("dev_gold.sql", "dev")):
        (root / name).write_text("".join(f"{r['query']}\t{r['db_id']}\n" for r in splits[key]))
    summary = {"params": params, "dbs": list(DATABASES), "train": len(splits["train"]), "dev": len(splits["dev"]),
               "features": dict(sorted(features.items()))}
    (root / "synth.json").write_text(json.dumps(summary, indent=1))
    return summary
