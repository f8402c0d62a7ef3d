"""Watching a run as a user does: a real Prometheus scraping every Ray node, and the Ray
dashboard in a real headless browser (Debian's Chromium). Used by `cluster_check.py --watch`.

Prometheus reads its targets from a file we rewrite as nodes join (file_sd), so a worker
that replaces a lost one is scraped too. The browser is driven over the DevTools protocol
(aiohttp, which Ray already needs, speaks WebSocket): it gets the cluster's token as the
dashboard's own login cookie, opens a page, waits for the app to render, and saves a
screenshot and the page's text, so that what the user would see can be checked.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

TOKEN_COOKIE = "ray-authentication-token"  # ray/_private/authentication/authentication_constants.py
TOKEN_FILE = Path.home() / ".ray" / "auth_token"


def _need(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if not path:
        raise SystemExit(f"watch: {binary} not found: apt-get install -y {package}")
    return path


def prometheus_config(folder: Path, ports: list[int], every_s: int = 2) -> Path:
    """`folder`/prometheus.yml scraping the nodes' metrics ports, listed in targets.json (file
    service discovery: rewrite that file and Prometheus follows)."""
    folder.mkdir(parents=True, exist_ok=True)
    targets = folder / "targets.json"
    set_targets(targets, ports)
    config = folder / "prometheus.yml"
    config.write_text(f"global: {{scrape_interval: {every_s}s, evaluation_interval: {every_s}s}}\n"
                      "scrape_configs:\n"
                      "  - job_name: ray\n"
                      f"    file_sd_configs: [{{files: ['{targets}'], refresh_interval: {every_s}s}}]\n")
    return config


def set_targets(targets: Path, ports: list[int]) -> None:
    tmp = targets.with_suffix(".tmp")
    tmp.write_text(json.dumps([{"targets": [f"127.0.0.1:{p}" for p in ports]}]))
    tmp.replace(targets)


class Prometheus:
    """A Prometheus server of its own (port, data folder) scraping the given metrics ports."""

    def __init__(self, folder: Path, port: int = 59090, every_s: int = 2):
        self.folder, self.port = folder, port
        prometheus_config(folder, [], every_s)
        self.targets = folder / "targets.json"
        self.proc = subprocess.Popen(
            [_need("prometheus", "prometheus"), f"--config.file={folder / 'prometheus.yml'}",
             f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=open(folder / "prometheus.log", "w"), stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2)
                return
            except OSError:
                time.sleep(0.5)
        raise SystemExit(f"watch: Prometheus did not start, see {folder / 'prometheus.log'}")

    def set_targets(self, ports: list[int]) -> None:
        set_targets(self.targets, ports)

    def api(self, path: str, **params) -> dict:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        return json.load(urllib.request.urlopen(url, timeout=10))["data"]

    def names(self, prefix: str = "ray_exesql_") -> list[str]:
        return sorted(n for n in self.api("label/__name__/values") if n.startswith(prefix))

    def by_engine(self, metric: str) -> dict[str, float]:
        rows = self.api("query", query=f"sum by (engine) ({metric})")["result"]
        return {r["metric"].get("engine", ""): float(r["value"][1]) for r in rows}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def alive_actor_classes(dashboard: str) -> list[str]:
    """The class of every ALIVE actor, from the dashboard's state API (with the cluster's token)."""
    token = TOKEN_FILE.read_text().strip() if TOKEN_FILE.is_file() else ""
    req = urllib.request.Request(f"{dashboard}/api/v0/actors?limit=10000",
                                 headers={"Authorization": f"Bearer {token}"} if token else {})
    rows = json.load(urllib.request.urlopen(req, timeout=30))["data"]["result"]["result"]
    return sorted(r["class_name"] for r in rows if r.get("state") == "ALIVE")


async def _devtools(port: int, dashboard: str, pages: list[tuple[str, Path]], wait_s: float) -> dict[str, str]:
    import aiohttp

    token = TOKEN_FILE.read_text().strip() if TOKEN_FILE.is_file() else ""
    texts = {}
    async with aiohttp.ClientSession() as http:
        targets = await (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
        ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page")
        async with http.ws_connect(ws_url, max_msg_size=0) as ws:
            ids = iter(range(1, 10**6))

            async def call(method: str, **params):
                i = next(ids)
                await ws.send_json({"id": i, "method": method, "params": params})
                async for msg in ws:
                    data = json.loads(msg.data)
                    if data.get("id") == i:
                        if "error" in data:
                            raise RuntimeError(f"{method}: {data['error']}")
                        return data.get("result", {})

            await call("Network.enable")
            if token:
                await call("Network.setCookie", name=TOKEN_COOKIE, value=token, url=dashboard)
            await call("Page.enable")
            for fragment, png in pages:
                await call("Page.navigate", url=f"{dashboard}/{fragment}")
                await asyncio.sleep(wait_s)  # the app renders, then polls its API
                shot = await call("Page.captureScreenshot", format="png")
                png.write_bytes(base64.b64decode(shot["data"]))
                text = await call("Runtime.evaluate", expression="document.body.innerText", returnByValue=True)
                texts[fragment] = text.get("result", {}).get("value", "")
    return texts


def screenshots(dashboard: str, pages: list[tuple[str, Path]], wait_s: float = 8.0, port: int = 59222,
                size: str = "1600,1500") -> dict[str, str]:
    """Each (URL fragment, png path) of the dashboard in headless Chromium; returns each page's
    rendered text by fragment."""
    profile = tempfile.mkdtemp(prefix="exesql-chromium-")
    proc = subprocess.Popen([_need("chromium", "chromium"), "--headless=new", "--no-sandbox", "--disable-gpu",
                             f"--remote-debugging-port={port}", f"--window-size={size}", f"--user-data-dir={profile}",
                             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/json/version", timeout=2)
                break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit("watch: Chromium's DevTools port did not open")
                time.sleep(0.5)
        return asyncio.run(_devtools(port, dashboard, pages, wait_s))
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)
