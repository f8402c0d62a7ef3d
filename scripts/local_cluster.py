"""A multi-node Ray cluster on one machine: a head and worker nodes started with `ray start`,
each with its own CPUs, custom resources and ports, in one temp dir of their own.

    .venv/bin/python scripts/local_cluster.py up [--workers 2] [--dir /tmp/exesql-cluster]
    RAY_AUTH_MODE=token RAY_ADDRESS=127.0.0.1:56479 .venv/bin/exesql-ray sample --iteration 0 --config … \\
        generation.resources='{generator: 1}' execution.actor_resources='{duckdb: {executor: 1}}'
    .venv/bin/python scripts/local_cluster.py down [--dir /tmp/exesql-cluster]

`up` also writes <dir>/prometheus.yml, a Prometheus config that scrapes every node.

The head declares `generator` (the replicas go there), the workers `executor` (the executor
actors go there), as cluster.yaml's GPU and CPU nodes do. `ray stop` would stop every Ray on
the machine, a test session's too, so `down` and `kill_node` find this cluster's processes by
the temp dir or node port in their command lines and signal those PIDs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RAY = str(Path(sys.executable).with_name("ray"))


@dataclass
class Node:
    name: str
    node_manager_port: int
    cpus: float
    resources: dict[str, float]
    ports: list[str] = field(default_factory=list)

    @property
    def metrics_port(self) -> int:
        return self.node_manager_port + 5


def _cmdlines() -> dict[int, str]:
    out = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                out[int(p.name)] = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                pass
    return out


class LocalCluster:
    """`ray start` nodes on this machine. Ports from `base` up: the head's GCS at base, and per
    node a block of 100 (node manager, object manager, agents, metrics, worker ports)."""

    def __init__(self, temp_dir: str | Path = "/tmp/exesql-cluster", base: int = 56400, object_store_mb: int = 1024):
        self.temp_dir = Path(temp_dir)
        self.base = base
        self.nodes: list[Node] = []
        # each node's object store, not Ray's default share of the machine's memory per node:
        # three nodes on one machine would reserve most of it three times over
        self.object_store_mb = object_store_mb
        # Ray 2.60 turns token authentication on: the head writes the token (~/.ray/auth_token),
        # workers and clients read it when told to (docs/platform.md)
        self.env = {**os.environ, "RAY_AUTH_MODE": "token"}
        # the jobs' database logins: the nodes pass their environment on to the workers
        dbs = ROOT / ".run" / "dbs" / "env"
        if dbs.is_file():
            for line in dbs.read_text().splitlines():
                key, _, value = line.removeprefix("export ").partition("=")
                self.env.setdefault(key, value.strip("'"))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.base + 79}"

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.base + 65}"

    def _ports(self, i: int) -> tuple[int, list[str]]:
        p = self.base + 100 * (i + 1)
        return p, ["--node-manager-port", str(p), "--object-manager-port", str(p + 1),
                   "--dashboard-agent-listen-port", str(p + 2), "--dashboard-agent-grpc-port", str(p + 3),
                   "--runtime-env-agent-port", str(p + 4), "--metrics-export-port", str(p + 5),
                   ]

    def _start(self, name: str, cpus: float, resources: dict, extra: list[str]) -> Node:
        i = len(self.nodes)
        port, ports = self._ports(i)
        cmd = [RAY, "start", *extra, "--num-cpus", str(int(cpus)), "--resources", json.dumps(resources),
               "--object-store-memory", str(self.object_store_mb * 2**20), *ports, "--disable-usage-stats"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=self.env)
        if r.returncode != 0:
            raise RuntimeError(f"ray start of {name} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
        node = Node(name, port, cpus, resources, ports)
        self.nodes.append(node)
        return node

    def start_head(self, cpus: float = 2, resources: dict | None = None, dashboard: bool = False) -> Node:
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        return self._start("head", cpus, resources or {"generator": 1}, [
            "--head", "--port", str(self.base + 79), "--temp-dir", str(self.temp_dir),
            "--include-dashboard", str(dashboard).lower(), "--dashboard-host", "127.0.0.1",
            "--dashboard-port", str(self.base + 65),
            "--ray-client-server-port", str(self.base + 1)])

    def add_worker(self, cpus: float = 2, resources: dict | None = None) -> Node:
        # a temp dir of its own: nodes that share one share their runtime-env folders, and a
        # node that unpacks a job's working_dir again deletes the folder the job's driver runs in
        i = len(self.nodes)
        return self._start(f"worker-{i}", cpus, resources or {"executor": 8},
                           ["--address", self.address, "--temp-dir", str(self.temp_dir / f"node-{i}")])

    def raylet_pid(self, node: Node) -> int | None:
        """The PID of `node`'s raylet (its command line names the node's manager port)."""
        for pid, cmd in _cmdlines().items():
            if "/raylet" in cmd.split(" ", 1)[0] and f"--node_manager_port={node.node_manager_port}" in cmd:
                return pid
        return None

    def executor_processes(self, node: Node) -> int:
        """Executor actor processes running under the node's raylet."""
        r = subprocess.run(["ps", "-o", "cmd=", "--ppid", str(self.raylet_pid(node))], capture_output=True, text=True)
        return sum("ExecuteBatch" in line for line in r.stdout.splitlines())

    def kill_node(self, node: Node) -> int:
        """SIGKILL the node's raylet, as a machine that dies would; its workers go with it."""
        pid = self.raylet_pid(node)
        if pid is None:
            raise RuntimeError(f"no raylet for {node.name} (port {node.node_manager_port})")
        os.kill(pid, signal.SIGKILL)
        return pid

    def wait_for_nodes(self, alive: int, timeout: float = 120) -> None:
        """Until the GCS counts `alive` live nodes (a killed one is noticed by its health check)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.alive_nodes() == alive:
                return
            time.sleep(1)
        raise TimeoutError(f"{self.alive_nodes()} live nodes after {timeout} s, want {alive}")

    def alive_nodes(self) -> int:
        code = ("import ray, json; ray.init(address='auto', logging_level='ERROR'); "
                "print(json.dumps(sum(n['Alive'] for n in ray.nodes())))")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                           env={**self.env, "RAY_ADDRESS": self.address})
        return int(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else -1

    def down(self) -> int:
        """SIGKILL every process of this cluster (they name its temp dir, or, like the Ray client
        server a head starts, its GCS address); returns how many."""
        import re

        killed = 0
        gcs = re.compile(rf"--address=\S+:{self.base + 79}(?!\d)")
        for pid, cmd in _cmdlines().items():
            if (str(self.temp_dir) + "/" in cmd or gcs.search(cmd)) and pid != os.getpid():
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
                except ProcessLookupError:
                    pass
        return killed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=["up", "down"])
    ap.add_argument("--dir", default="/tmp/exesql-cluster", help="the cluster's temp dir")
    ap.add_argument("--base-port", type=int, default=56400)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--worker-cpus", type=float, default=2)
    args = ap.parse_args()
    cluster = LocalCluster(args.dir, args.base_port)
    if args.action == "down":
        print(f"stopped {cluster.down()} processes of the cluster in {args.dir}")
        return
    cluster.start_head(dashboard=True)
    for _ in range(args.workers):
        cluster.add_worker(cpus=args.worker_cpus)
    cluster.wait_for_nodes(1 + args.workers)
    from watch import prometheus_config

    config = prometheus_config(Path(args.dir), [n.metrics_port for n in cluster.nodes])
    print(f"RAY_AUTH_MODE=token RAY_ADDRESS={cluster.address}  dashboard {cluster.dashboard} (token: "
          f"~/.ray/auth_token)  nodes {1 + args.workers}\nscrape every node: prometheus --config.file={config}")


if __name__ == "__main__":
    main()
