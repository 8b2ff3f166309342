"""Load: concurrent clients over loopback against a real `sanad serve`, for a bounded time.

Indexes seeds/ into a temporary data folder, starts `sanad serve` on 127.0.0.1 and a free
port, waits until it has loaded its models, then runs N clients (asyncio + httpx), each
asking the seed questions (eval/questions.jsonl, standalone form, both languages) with
POST /api/ask, one request after another, until the time is up or it has sent
--max-requests. A client told 503 "busy" (or 429) waits --backoff seconds before its next
question, as a polite client would. Figures: requests by outcome, throughput, p50/p95
latency of the answered ones, how fast "busy" comes back, the most requests the server
held at once (polled from /healthz) and the server's peak RSS.

The server works on up to concurrent_answers answers at once (app/web/runner.py), their
model calls one at a time and their embeddings batched; the others wait in a queue, and
a request is refused with 503 "busy" only when it could not start within
queue_deadline_s. The rate limit is switched off (every client is 127.0.0.1, so all would
share one bucket and the test would measure 429s); the settings are printed.

    python bench/load.py                                   # extractive: 20 clients x 60 s,
                                                           # then local LLM: 4 clients x 60 s
    python bench/load.py --backend extractive --clients 20 --seconds 60
    python bench/load.py --backend local --local-clients 3 --local-seconds 60 --threads 1
    python bench/load.py --backend upload                  # 4 clients asking (extractive)
                                                           # without, then during, the upload
                                                           # and indexing of a 1 MB article

The upload phase measures what issue 15 asks of background indexing: the clients' p50 while
a 1 MB article is uploaded (Gradio's upload, then its add_articles call with the admin
token) and indexed, against their p50 for as long without an upload; the goal is within
1.5x. Indexing takes the model slot one embedding batch at a time (app/indexing_job.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.eval.metrics import percentile  # noqa: E402
from bench.common import ROOT, machine_load, seed_questions  # noqa: E402


@dataclass
class Phase:
    backend: str
    clients: int
    seconds: float


@dataclass
class Tally:
    """What the clients of one phase saw."""

    statuses: Counter = field(default_factory=Counter)
    failures: Counter = field(default_factory=Counter)  # transport errors, by type
    answered_ms: list[float] = field(default_factory=list)
    busy_ms: list[float] = field(default_factory=list)
    busy_example: str = ""
    peak_in_model: int = 0
    elapsed: float = 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


ADMIN_TOKEN = "load-bench-admin"


def server_env(data_dir: Path, args: argparse.Namespace) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "SANAD_DATA_DIR": str(data_dir),
            "SANAD_ADMIN_TOKEN": ADMIN_TOKEN,
            "SANAD_RATE_LIMIT_PER_MINUTE": "0",
            "SANAD_CONCURRENT_ANSWERS": str(args.concurrent),
            "SANAD_QUEUE_DEADLINE_S": str(args.deadline),
            "SANAD_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1", "GRADIO_ANALYTICS_ENABLED": "False"}


def sanad(*command: str) -> list[str]:
    return [sys.executable, "-m", "app.cli", *command]


def build_index(env: dict[str, str]) -> str:
    started = time.perf_counter()
    done = subprocess.run(sanad("index", "-q", str(ROOT / "seeds")), cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"indexing seeds/ failed:\n{done.stderr[-2000:]}")
    return f"{done.stdout.strip().splitlines()[0]} ({time.perf_counter() - started:.0f} s)"


def peak_rss_mb(pid: int) -> float:
    """The process's high-water mark of resident memory (Linux: VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    """`sanad serve --backend B` in a child process, ready once its backend is loaded."""

    def __init__(self, backend: str, env: dict[str, str], log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.backend = backend
        self.log = log
        self._env = env
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                sanad("serve", "--host", "127.0.0.1", "--port", str(self.port),
                      "--backend", self.backend),
                cwd=ROOT, env=self._env, stdout=out, stderr=subprocess.STDOUT)
        self._wait_ready(timeout=600)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"sanad serve exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                health = httpx.get(f"{self.url}/healthz", timeout=5).json()
                if health.get("answering_with") == self.backend:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        sys.exit(f"sanad serve was not ready within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def one_client(http: httpx.AsyncClient, questions: list[str], offset: int,
                     deadline: list[float], args: argparse.Namespace, tally: Tally) -> None:
    for n in range(args.max_requests):
        if time.monotonic() >= deadline[0]:
            return
        question = questions[(offset + n) % len(questions)]
        started = time.perf_counter()
        try:
            response = await http.post("/api/ask", json={"question": question})
        except httpx.HTTPError as exc:
            tally.failures[type(exc).__name__] += 1
            continue
        elapsed_ms = (time.perf_counter() - started) * 1000
        tally.statuses[response.status_code] += 1
        if response.status_code == 200:
            tally.answered_ms.append(elapsed_ms)
        elif response.status_code in (429, 503):
            if response.status_code == 503:
                tally.busy_ms.append(elapsed_ms)
                tally.busy_example = tally.busy_example or response.text
            await asyncio.sleep(args.backoff)


async def watch_in_model(http: httpx.AsyncClient, tally: Tally, stop: asyncio.Event) -> None:
    """The most requests the server held at once (running plus waiting), from /healthz."""
    while not stop.is_set():
        try:
            health = (await http.get("/healthz")).json()
            tally.peak_in_model = max(tally.peak_in_model, health["requests_in_model"])
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.2)


async def drive(url: str, phase: Phase, questions: list[str], args: argparse.Namespace,
                during: Callable[[httpx.AsyncClient], Awaitable[str]] | None = None
                ) -> tuple[Tally, str]:
    """The clients for `phase.seconds`, or, with `during`, for as long as it runs (at most
    `phase.seconds`); also what `during` returned."""
    tally = Tally()
    limits = httpx.Limits(max_connections=phase.clients + 2)
    async with httpx.AsyncClient(base_url=url, timeout=args.timeout, limits=limits) as http:
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch_in_model(http, tally, stop))
        started = time.monotonic()
        deadline = [started + phase.seconds]
        outcome = ""

        async def run_during() -> None:
            nonlocal outcome
            outcome = await during(http)
            deadline[0] = time.monotonic()  # the clients stop with it

        task = asyncio.create_task(run_during()) if during else None
        # Each client starts at another question, so they do not ask in lockstep.
        await asyncio.gather(*(one_client(http, questions, i * 7, deadline, args, tally)
                               for i in range(phase.clients)))
        if task is not None and not task.done():  # out of time: stop waiting for it
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            outcome = f"not finished within {phase.seconds:g} s"
        tally.elapsed = time.monotonic() - started
        stop.set()
        await watcher
    return tally, outcome


def big_article(size: int) -> bytes:
    """About `size` bytes of article text: the seeds' paragraphs, numbered so none repeats."""
    paragraphs = [p.strip() for f in sorted((ROOT / "seeds").glob("*.txt"))
                  for p in f.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    parts, total, n = ["Archive of the talks (load test)"], 0, 0
    while total < size:
        parts.append(f"Part {n}. {paragraphs[n % len(paragraphs)]}")
        total += len(parts[-1].encode()) + 2
        n += 1
    return "\n\n".join(parts).encode()


async def upload_and_index(http: httpx.AsyncClient, content: bytes) -> str:
    """Upload through Gradio and index with the admin token; the chat's status line."""
    name = "load-test-archive.txt"
    uploaded = await http.post("/gradio_api/upload", files=[("files", (name, content, "text/plain"))])
    uploaded.raise_for_status()
    file_data = {"path": uploaded.json()[0], "orig_name": name, "meta": {"_type": "gradio.FileData"}}
    call = await http.post("/gradio_api/call/add_articles",
                           json={"data": [[file_data], ADMIN_TOKEN]})
    call.raise_for_status()
    events = await http.get(f"/gradio_api/call/add_articles/{call.json()['event_id']}",
                            timeout=None)
    return events.text.strip().splitlines()[-1].removeprefix("data: ")


def run_upload_phase(env: dict[str, str], questions: list[str], args: argparse.Namespace,
                     tmp: Path) -> None:
    phase = Phase("extractive", args.upload_clients, args.upload_seconds)
    content = big_article(int(args.upload_mb * 1024 * 1024))
    print("upload: starting sanad serve (extractive)...", flush=True)
    with Server("extractive", env, tmp / "serve-upload.log") as server:
        print(f"upload: {phase.clients} clients, no upload, {phase.seconds:g} s "
              f"({machine_load()})", flush=True)
        quiet, _ = asyncio.run(drive(server.url, phase, questions, args))
        print(f"upload: without an upload, p50 {ms(percentile(quiet.answered_ms, 50))} ms",
              flush=True)
        print(f"upload: {phase.clients} clients while {len(content) / 1e6:.2f} MB is uploaded "
              f"and indexed ({machine_load()})", flush=True)
        longest = Phase("extractive", args.upload_clients, args.upload_timeout)
        busy, status = asyncio.run(drive(server.url, longest, questions, args,
                                         lambda http: upload_and_index(http, content)))
    rows = [("no upload", quiet), ("during upload", busy)]
    print(f"{'':14} {'s':>5} {'answered':>8} {'p50 ms':>7} {'p95 ms':>7} {'503':>5}")
    for label, t in rows:
        print(f"{label:14} {t.elapsed:5.0f} {t.statuses[200]:>8} "
              f"{ms(percentile(t.answered_ms, 50)):>7} {ms(percentile(t.answered_ms, 95)):>7} "
              f"{t.statuses[503]:>5}")
    base, during = percentile(quiet.answered_ms, 50), percentile(busy.answered_ms, 50)
    if base and during:
        print(f"p50 during the upload / without: {during / base:.2f}x (goal: at most 1.5x)")
    print(f"indexing: {status}")


def run_phase(phase: Phase, env: dict[str, str], questions: list[str], args: argparse.Namespace,
              tmp: Path) -> tuple[Tally, float]:
    print(f"{phase.backend}: starting sanad serve and loading its models...", flush=True)
    with Server(phase.backend, env, tmp / f"serve-{phase.backend}.log") as server:
        print(f"{phase.backend}: {phase.clients} clients for {phase.seconds:g} s "
              f"({machine_load()})", flush=True)
        tally, _ = asyncio.run(drive(server.url, phase, questions, args))
        rss = peak_rss_mb(server.proc.pid)
    return tally, rss


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def print_table(rows: list[tuple[Phase, Tally, float]]) -> None:
    header = (f"{'backend':10} {'clients':>7} {'s':>5} {'requests':>8} {'200':>6} {'503 busy':>8} "
              f"{'429':>4} {'other':>5} {'answers/s':>9} {'p50 ms':>7} {'p95 ms':>7} "
              f"{'busy p50 ms':>11} {'peak held':>9} {'peak RSS MB':>11}")
    print(header)
    print("-" * len(header))
    for phase, t, rss in rows:
        other = sum(n for s, n in t.statuses.items() if s not in (200, 429, 503))
        other += sum(t.failures.values())
        total = sum(t.statuses.values()) + sum(t.failures.values())
        print(f"{phase.backend:10} {phase.clients:>7} {t.elapsed:5.0f} {total:>8} "
              f"{t.statuses[200]:>6} {t.statuses[503]:>8} {t.statuses[429]:>4} {other:>5} "
              f"{t.statuses[200] / t.elapsed:9.2f} {ms(percentile(t.answered_ms, 50)):>7} "
              f"{ms(percentile(t.answered_ms, 95)):>7} {ms(percentile(t.busy_ms, 50)):>11} "
              f"{t.peak_in_model:>9} {rss:11.0f}")
    print("peak held: most requests the server held at once (running + waiting)")
    for phase, t, _ in rows:
        if t.failures or any(s not in (200, 429, 503) for s in t.statuses):
            print(f"{phase.backend}: other outcomes {dict(t.statuses)} {dict(t.failures)}")
        if t.busy_example:
            print(f"{phase.backend}: a 503 said {json.loads(t.busy_example)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["extractive", "local", "both", "upload"],
                        default="both")
    parser.add_argument("--clients", type=int, default=20, help="clients for extractive")
    parser.add_argument("--seconds", type=float, default=60, help="duration for extractive")
    parser.add_argument("--local-clients", type=int, default=4)
    parser.add_argument("--local-seconds", type=float, default=60)
    parser.add_argument("--upload-clients", type=int, default=4)
    parser.add_argument("--upload-seconds", type=float, default=60,
                        help="the run without an upload")
    parser.add_argument("--upload-timeout", type=float, default=1800,
                        help="the most the run during the upload may take")
    parser.add_argument("--upload-mb", type=float, default=1.0)
    parser.add_argument("--max-requests", type=int, default=2000, help="per client, at most")
    parser.add_argument("--concurrent", type=int, default=8,
                        help="the server's concurrent_answers (its default: 8)")
    parser.add_argument("--deadline", type=float, default=30,
                        help="the server's queue_deadline_s (its default: 30)")
    parser.add_argument("--threads", type=int, default=1, help="SANAD_THREADS for the server")
    parser.add_argument("--backoff", type=float, default=1.0,
                        help="seconds a client waits after a 503 or 429")
    parser.add_argument("--timeout", type=float, default=300, help="per request, seconds")
    args = parser.parse_args()
    phases = [Phase("extractive", args.clients, args.seconds),
              Phase("local", args.local_clients, args.local_seconds)]
    phases = [p for p in phases if args.backend in ("both", p.backend)]
    questions = [q["question"] for q in seed_questions()]
    print(machine_load())
    print(f"server settings: rate limit off (SANAD_RATE_LIMIT_PER_MINUTE=0), "
          f"concurrent_answers={args.concurrent}, queue_deadline_s={args.deadline:g}, "
          f"SANAD_THREADS={args.threads}; clients back off "
          f"{args.backoff:g} s after a 503/429; {len(questions)} seed questions")
    rows = []
    with tempfile.TemporaryDirectory(prefix="sanad-load-") as tmp:
        env = server_env(Path(tmp) / "data", args)
        print(f"index: {build_index(env)}", flush=True)
        if args.backend == "upload":
            run_upload_phase(env, questions, args, Path(tmp))
            print(f"after: {machine_load()}")
            return
        for phase in phases:
            tally, rss = run_phase(phase, env, questions, args, Path(tmp))
            rows.append((phase, tally, rss))
    print_table(rows)
    print(f"after: {machine_load()}")


if __name__ == "__main__":
    main()
