"""Concurrent raters through the rater API, against gunicorn and PostgreSQL.

Run: .venv/bin/python bench/load.py [--raters N] [--seconds S] [--workers W] [--threads T]
     [--encode-cache DIR]

Builds the demo study without screening (6 images, 16 conditions: the shape of
a real study, 720 pairs to schedule) in a temporary VAR_DIR and a fresh
PostgreSQL database (created, then dropped), with no golden trials and no
minimum viewing time, so that simulated raters answer at once. Sessions keep
the study default of 30 counted trials after 2 practice trials, so starting,
practising and ending sessions come at their real rate (a rater whose session
ends starts another). Serves it with gunicorn as docs/deploy.md does (DEBUG=0,
DB_CONN_MAX_AGE=60, 5 workers of 2 threads), then runs N raters in threads of
this process (http.client, one keep-alive connection each). Each rater loops
GET next / POST vote without pause; a vote carries a fresh client_vote_id and
is sent again with the same id after a connection error or a 5xx until the
server acknowledges it (201, or 200 for a vote already stored).

Phases, in one run:
- baselines, on the same gunicorn with the same N clients: a static file
  (WhiteNoise) and `next` without a token (401 before any database work),
  the floor of the web stack on this machine;
- load: N raters for S seconds;
  the baselines and the load alternate for R rounds, so that both meet the
  same neighbours on the shared machine;
- sigkill: N other raters for S seconds; halfway through, one gunicorn worker
  (not the master) is killed with SIGKILL, gunicorn starts another, the
  raters retry.

After each phase the database is compared with what the server acknowledged:
every acknowledged client_vote_id stored once, for the trial it was sent for,
and nothing stored that was not acknowledged; also, no rater was issued the
same pair twice. CPU time of gunicorn, of the database's backends and of the
clients is read from /proc, per request and per vote.

Targets (issue 9): at least 500 votes/s with p99 <= 100 ms for `next` and
`vote`, and zero lost or duplicated votes across the SIGKILL.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parent.parent
ADMIN_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/postgres"
STUDY_SLUG = "load"
STATIC_PATH = "/static/evalsite/site.css"
REFUSED_PATH = "/api/v1/sessions/none/next"

# A request that gets no answer within this long counts as a connection error.
REQUEST_TIMEOUT_S = 30.0
# Retries back off from the first delay, doubling up to the last.
RETRY_DELAY_FIRST_S = 0.02
RETRY_DELAY_MAX_S = 1.0
# A vote not acknowledged after this long is given up (and reported).
RETRY_GIVE_UP_S = 120.0
# Answer time sent with each vote; the study's minimum is set to 0.
RESPONSE_MS = 800
# Seconds of load before the measured phases, so workers have imported
# everything and connected to the database.
WARMUP_S = 3.0
# How long the master may take to replace a killed worker.
RESPAWN_TIMEOUT_S = 60.0

TARGET_VOTES_PER_S = 500
TARGET_P99_MS = 100.0


# --- Setup ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _fresh_database(admin_url: str, name: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for the run, dropped afterwards; yields its URL."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, check=True)


def _build_study(env: dict[str, str], trials_per_session: int) -> None:
    _manage(env, "migrate", "--noinput", "-v0")
    _manage(env, "collectstatic", "--noinput", "-v0")
    _manage(env, "demo_study", "--slug", STUDY_SLUG, "--no-screening")
    # No golden trials (a blind script would fail them) and no minimum viewing
    # time, so a rater answers as soon as it has a trial.
    _manage(
        env,
        "shell",
        "-c",
        "from studies.models import Study; "
        f"Study.objects.filter(slug={STUDY_SLUG!r}).update("
        f"trials_per_session={trials_per_session}, golden_rate=0, min_view_ms=0)",
    )


def _wait_for(port: int, path: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", path)
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.3)
        finally:
            conn.close()
    raise RuntimeError(f"gunicorn did not answer {path} within {timeout} s")


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (gunicorn's workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces; the fields after its ')' are fixed.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def _cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine since boot."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def _process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) the process has used, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Servers:
    """The processes that serve the run: gunicorn's, and the database's backends."""

    master: int
    database_url: str

    def cpu(self) -> dict[str, dict[int, float]]:
        """CPU seconds so far of each process, by group."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            backends = [
                pid
                for (pid,) in conn.execute(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ]
        groups = {"gunicorn": [self.master, *_children(self.master)], "postgres": backends}
        found: dict[str, dict[int, float]] = {}
        for group, pids in groups.items():
            found[group] = {}
            for pid in pids:
                seconds = _process_cpu(pid)
                if seconds is not None:
                    found[group][pid] = seconds
        return found


def _cpu_used(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]):
    """CPU seconds each group used between two readings (processes that ended are missed)."""
    return {
        group: sum(t - before.get(group, {}).get(pid, 0.0) for pid, t in pids.items())
        for group, pids in after.items()
    }


# --- Clients ----------------------------------------------------------------------


class RetryableError(Exception):
    """A connection error or a 5xx: send the same request again."""


class Client:
    """One keep-alive HTTP connection, reopened after an error."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._conn: http.client.HTTPConnection | None = None

    def request(
        self, method: str, path: str, *, body: Any = None, token: str | None = None
    ) -> tuple[int, bytes]:
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if self._conn is None:
            self._conn = http.client.HTTPConnection(
                "127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S
            )
        try:
            self._conn.request(method, path, body=data, headers=headers)
            response = self._conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise RetryableError(repr(exc)) from exc
        if response.will_close:
            self.close()
        if response.status >= 500:
            raise RetryableError(f"HTTP {response.status}")
        return response.status, payload

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@dataclass
class Tally:
    """What one client saw; merged over all clients of a phase."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    acknowledged: dict[str, str] = field(default_factory=dict)  # client_vote_id -> trial
    created: int = 0  # acknowledged with 201
    replayed: int = 0  # acknowledged with 200 (a retry of a vote already stored)
    retries: int = 0
    given_up: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    sessions: int = 0

    def merge(self, other: Tally) -> None:
        for name, values in other.latencies.items():
            self.latencies.setdefault(name, []).extend(values)
        self.acknowledged.update(other.acknowledged)
        self.created += other.created
        self.replayed += other.replayed
        self.retries += other.retries
        self.given_up += other.given_up
        self.errors += other.errors
        self.sessions += other.sessions


def _until_answered(client: Client, tally: Tally, name: str, method: str, path: str, **kw: Any):
    """Send a request until it gets an answer that is not a 5xx; (status, body, seconds).

    The time is the rater's: from the first try to the answer, retries included.
    """
    start = time.perf_counter()
    delay = RETRY_DELAY_FIRST_S
    while True:
        try:
            status, payload = client.request(method, path, **kw)
        except RetryableError as exc:
            if time.perf_counter() - start > RETRY_GIVE_UP_S:
                raise TimeoutError(f"{name}: no answer for {RETRY_GIVE_UP_S} s ({exc})") from exc
            tally.retries += 1
            time.sleep(delay)
            delay = min(2 * delay, RETRY_DELAY_MAX_S)
            continue
        elapsed = time.perf_counter() - start
        tally.latencies.setdefault(name, []).append(elapsed)
        return status, payload


def _rater(port: int, prefix: str, deadline: float, seed: int, tally: Tally) -> None:
    """One simulated rater: sessions one after another until the deadline."""
    rng = random.Random(seed)
    client = Client(port)
    try:
        while time.monotonic() < deadline:
            participant = f"{prefix}-{uuid.uuid4().hex[:12]}"
            status, payload = _until_answered(
                client,
                tally,
                "session",
                "POST",
                f"/api/v1/studies/{STUDY_SLUG}/sessions",
                body={"participant": participant, "platform": "direct"},
            )
            if status not in (200, 201):
                tally.errors.append(f"session: HTTP {status} {payload[:200]!r}")
                return
            tally.sessions += 1
            token = json.loads(payload)["session"]
            while time.monotonic() < deadline:
                status, payload = _until_answered(
                    client, tally, "next", "GET", f"/api/v1/sessions/{token}/next", token=token
                )
                body = json.loads(payload)
                if status != 200:
                    tally.errors.append(f"next: HTTP {status} {body}")
                    return
                if body.get("finished"):
                    break
                trial = body["trial"]
                vote_id = str(uuid.uuid4())
                vote = {
                    "choice": rng.choice(("left", "right")),
                    "client_vote_id": vote_id,
                    "response_ms": RESPONSE_MS,
                    "flips": 0,
                }
                try:
                    status, payload = _until_answered(
                        client,
                        tally,
                        "vote",
                        "POST",
                        f"/api/v1/trials/{trial}/vote",
                        body=vote,
                        token=token,
                    )
                except TimeoutError:
                    tally.given_up.append(vote_id)
                    return
                if status in (200, 201):
                    tally.acknowledged[vote_id] = trial
                    if status == 201:
                        tally.created += 1
                    else:
                        tally.replayed += 1
                else:
                    tally.errors.append(f"vote: HTTP {status} {payload[:200]!r}")
                    return
    except Exception as exc:  # noqa: BLE001 - reported, the run goes on
        tally.errors.append(f"rater {prefix}: {exc!r}")
    finally:
        client.close()


def _fetcher(port: int, path: str, name: str, deadline: float, expected: int, tally: Tally):
    """Fetch one URL again and again until the deadline (the baseline)."""
    client = Client(port)
    try:
        while time.monotonic() < deadline:
            status, _ = _until_answered(client, tally, name, "GET", path)
            if status != expected:
                tally.errors.append(f"{name}: HTTP {status}")
                return
    finally:
        client.close()


@dataclass
class PhaseResult:
    name: str
    seconds: float
    tally: Tally
    machine_busy: float  # share of the machine's CPU time used by anything
    client_cpu: float  # cores used by this process (the clients)
    server_cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds by group
    killed: list[int] = field(default_factory=list)
    respawned: bool | None = None
    check: dict[str, int] = field(default_factory=dict)

    def per_second(self, name: str) -> float:
        return len(self.tally.latencies.get(name, [])) / self.seconds

    @property
    def votes_per_second(self) -> float:
        return len(self.tally.acknowledged) / self.seconds


def _run_threads(targets: list[tuple[Any, tuple[Any, ...]]]) -> None:
    threads = [threading.Thread(target=fn, args=args, daemon=True) for fn, args in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _phase(
    name: str, seconds: float, run: Any, *, servers: Servers, kill: Any = None
) -> PhaseResult:
    server0 = servers.cpu()
    busy0, total0 = _cpu_times()
    cpu0 = sum(os.times()[:2])
    start = time.monotonic()
    deadline = start + seconds
    tally = Tally()
    killer_result: dict[str, Any] = {}
    killer = None
    if kill is not None:
        killer = threading.Thread(target=kill, args=(start, killer_result), daemon=True)
        killer.start()
    run(deadline, tally)
    elapsed = time.monotonic() - start
    if killer is not None:
        killer.join()
    busy1, total1 = _cpu_times()
    cpu1 = sum(os.times()[:2])
    server1 = servers.cpu()
    return PhaseResult(
        name=name,
        seconds=elapsed,
        tally=tally,
        machine_busy=(busy1 - busy0) / max(total1 - total0, 1),
        client_cpu=(cpu1 - cpu0) / elapsed,
        server_cpu=_cpu_used(server0, server1),
        killed=killer_result.get("killed", []),
        respawned=killer_result.get("respawned"),
    )


def _raters(port: int, n: int, prefix: str, seed: int):
    def run(deadline: float, tally: Tally) -> None:
        tallies = [Tally() for _ in range(n)]
        _run_threads(
            [
                (_rater, (port, f"{prefix}{i}", deadline, seed * 10_000 + i, tallies[i]))
                for i in range(n)
            ]
        )
        for part in tallies:
            tally.merge(part)

    return run


def _fetchers(port: int, n: int, path: str, name: str, expected: int):
    def run(deadline: float, tally: Tally) -> None:
        tallies = [Tally() for _ in range(n)]
        _run_threads(
            [(_fetcher, (port, path, name, deadline, expected, tallies[i])) for i in range(n)]
        )
        for part in tallies:
            tally.merge(part)

    return run


def _killer(master: int, workers: int, at: float, kills: int, seed: int):
    """Kill ``kills`` workers with SIGKILL, the first ``at`` seconds into the phase."""
    rng = random.Random(seed)

    def kill(start: float, result: dict[str, Any]) -> None:
        killed: list[int] = []
        for k in range(kills):
            time.sleep(max(0.0, start + at * (1 + k / max(kills, 1)) - time.monotonic()))
            victim = rng.choice(_children(master))
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)
        deadline = time.monotonic() + RESPAWN_TIMEOUT_S
        respawned = False
        while time.monotonic() < deadline:
            alive = [pid for pid in _children(master) if pid not in killed]
            if len(alive) >= workers:
                respawned = True
                break
            time.sleep(0.2)
        result["killed"] = killed
        result["respawned"] = respawned

    return kill


# --- Checks -----------------------------------------------------------------------


def _check(database_url: str, prefix: str, tally: Tally) -> dict[str, int]:
    """Compare the votes stored for the phase's raters with those acknowledged."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            """
            SELECT v.client_vote_id::text, t.public_id::text
            FROM studies_vote v
            JOIN studies_trial t ON t.id = v.trial_id
            JOIN studies_ratersession s ON s.id = t.session_id
            JOIN studies_rater r ON r.id = s.rater_id
            WHERE r.external_id LIKE %s
            """,
            (f"{prefix}%",),
        ).fetchall()
        repeated_pairs = conn.execute(
            """
            SELECT count(*) FROM (
                SELECT t.session_id
                FROM studies_trial t
                JOIN studies_ratersession s ON s.id = t.session_id
                JOIN studies_rater r ON r.id = s.rater_id
                JOIN studies_stimulus a ON a.id = t.left_id
                JOIN studies_stimulus b ON b.id = t.right_id
                WHERE r.external_id LIKE %s AND NOT t.is_golden AND NOT t.is_practice
                GROUP BY t.session_id, t.source_image_id,
                         least(a.condition_id, b.condition_id),
                         greatest(a.condition_id, b.condition_id)
                HAVING count(*) > 1
            ) repeated
            """,
            (f"{prefix}%",),
        ).fetchone()
    stored: dict[str, str] = {}
    duplicates = 0
    for vote_id, trial in rows:
        if vote_id in stored:
            duplicates += 1
        stored[vote_id] = trial
    acknowledged = tally.acknowledged
    trials = [trial for _, trial in rows]
    return {
        "acknowledged": len(acknowledged),
        "stored": len(rows),
        "missing": sum(1 for v in acknowledged if v not in stored),
        "extra": sum(1 for v in stored if v not in acknowledged),
        "wrong_trial": sum(1 for v, t in acknowledged.items() if v in stored and stored[v] != t),
        "duplicates": duplicates,
        "trials_voted_twice": len(trials) - len(set(trials)),
        "pairs_repeated_to_a_rater": int(repeated_pairs[0]) if repeated_pairs else 0,
        "given_up": len(tally.given_up),
    }


def _check_ok(check: dict[str, int]) -> bool:
    bad = ("missing", "extra", "wrong_trial", "duplicates", "trials_voted_twice", "given_up")
    return all(check[key] == 0 for key in bad) and check["pairs_repeated_to_a_rater"] == 0


# --- Report -----------------------------------------------------------------------


def _quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile, in milliseconds."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))
    return 1000 * ordered[index]


def _latency(result: PhaseResult, name: str) -> str:
    values = result.tally.latencies.get(name, [])
    return (
        f"p50 {_quantile(values, 0.5):6.1f} ms, p99 {_quantile(values, 0.99):6.1f} ms, "
        f"max {_quantile(values, 1.0):7.1f} ms (n={len(values)})"
    )


def _print_phase(result: PhaseResult) -> None:
    tally = result.tally
    print(f"\n[{result.name}] {result.seconds:.1f} s")
    for name in ("static", "refused", "session", "next", "vote"):
        if name in tally.latencies:
            rate = result.per_second(name)
            print(f"  {name:8s} {rate:7.1f}/s  {_latency(result, name)}")
    if result.check:
        print(
            f"  votes/s {result.votes_per_second:.1f}; sessions {tally.sessions}; "
            f"acknowledged {tally.created} new + {tally.replayed} replayed (200)"
        )
        print("  check: " + ", ".join(f"{k} {v}" for k, v in result.check.items()))
    if result.killed:
        print(f"  SIGKILL to worker(s) {result.killed}; replaced: {result.respawned}")
    print(f"  retries {tally.retries}; errors {len(tally.errors)}")
    for error in tally.errors[:5]:
        print(f"    {error}")
    print(
        f"  machine CPU busy {100 * result.machine_busy:.0f}% of {os.cpu_count()} cores; "
        f"clients used {result.client_cpu:.2f} cores"
    )
    requests = sum(len(v) for v in tally.latencies.values())
    if requests and result.server_cpu and not result.killed:
        used = {**result.server_cpu, "clients": result.client_cpu * result.seconds}
        print(
            "  CPU per request: "
            + ", ".join(f"{group} {1000 * t / requests:.2f} ms" for group, t in used.items())
        )


def _verdict(load: PhaseResult, kill: PhaseResult) -> list[str]:
    p99 = max(_quantile(load.tally.latencies.get(n, []), 0.99) for n in ("next", "vote"))
    return [
        f"votes/s {load.votes_per_second:.0f} (target >= {TARGET_VOTES_PER_S}): "
        + ("met" if load.votes_per_second >= TARGET_VOTES_PER_S else "NOT met"),
        f"p99 of next and vote {p99:.1f} ms (target <= {TARGET_P99_MS:.0f} ms): "
        + ("met" if p99 <= TARGET_P99_MS else "NOT met"),
        "no vote lost or doubled, load phase: " + ("yes" if _check_ok(load.check) else "NO"),
        "no vote lost or doubled across SIGKILL: "
        + ("yes" if _check_ok(kill.check) and kill.killed and kill.respawned else "NO"),
    ]


# --- Main -------------------------------------------------------------------------


def _merge(name: str, parts: list[PhaseResult]) -> PhaseResult:
    """Rounds of one phase as one: tallies merged, times and CPU summed or averaged."""
    tally = Tally()
    for part in parts:
        tally.merge(part.tally)
    seconds = sum(p.seconds for p in parts)
    return PhaseResult(
        name=name,
        seconds=seconds,
        tally=tally,
        machine_busy=sum(p.machine_busy * p.seconds for p in parts) / seconds,
        client_cpu=sum(p.client_cpu * p.seconds for p in parts) / seconds,
        server_cpu={
            group: sum(p.server_cpu.get(group, 0.0) for p in parts) for group in parts[0].server_cpu
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raters", type=int, default=16, help="Concurrent simulated raters.")
    parser.add_argument(
        "--seconds",
        type=float,
        default=10.0,
        help="Length of a load round and of the sigkill phase.",
    )
    parser.add_argument("--baseline-seconds", type=float, default=3.0, help="Per baseline round.")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="Rounds of (baselines, load), so both see the same neighbours on the machine.",
    )
    # docs/deploy.md: about 2 x cores + 1 workers, 2 threads each.
    parser.add_argument("--workers", type=int, default=5, help="gunicorn worker processes.")
    parser.add_argument("--threads", type=int, default=2, help="Threads per gunicorn worker.")
    parser.add_argument("--kills", type=int, default=1, help="Workers killed in the sigkill phase.")
    parser.add_argument(
        "--trials-per-session",
        type=int,
        default=30,  # Study.DEFAULT_TRIALS_PER_SESSION
        help="Counted trials per session; a rater whose session ends starts another.",
    )
    parser.add_argument(
        "--encode-cache",
        type=Path,
        default=None,
        help="Keep the demo's encodes here between runs (content-addressed; default: none).",
    )
    parser.add_argument("--admin-database-url", default=ADMIN_DATABASE_URL)
    parser.add_argument("--database", default="arena_bench", help="Created, then dropped.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep-log", action="store_true", help="Print gunicorn's log at the end.")
    args = parser.parse_args()

    port = args.port or _free_port()
    load_before = os.getloadavg()
    with (
        tempfile.TemporaryDirectory(prefix="codec-arena-load-") as var,
        _fresh_database(args.admin_database_url, args.database) as database_url,
    ):
        env = {
            **os.environ,
            "VAR_DIR": var,
            "DATABASE_URL": database_url,
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1",
            "DB_CONN_MAX_AGE": "60",
            "LOG_LEVEL": "WARNING",
            # Both rate limits count every request, as on a real site, but so
            # high that none refuses: every simulated rater comes from
            # 127.0.0.1, and the 401 baseline asks with one made-up token.
            "RATER_API_RATE_PER_ADDRESS": str(10**9),
            "RATER_API_RATE_PER_SESSION": str(10**9),
        }
        if args.encode_cache is not None:
            args.encode_cache.mkdir(parents=True, exist_ok=True)
            (Path(var) / "encode-cache").symlink_to(args.encode_cache.resolve())
        setup_start = time.monotonic()
        _build_study(env, args.trials_per_session)
        setup_seconds = time.monotonic() - setup_start
        log_path = Path(var) / "gunicorn.log"
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "evalsite.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            "--threads",
            str(args.threads),
        ]
        # Django logs every refused call (the 401 baseline) to stderr: into the log.
        log = log_path.open("ab")
        server = subprocess.Popen(  # noqa: S603
            command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            _wait_for(port, STATIC_PATH)
            n = args.raters
            # Every worker imports what it lazily needs and connects to the database.
            servers = Servers(master=server.pid, database_url=database_url)
            _phase("warm-up", WARMUP_S, _raters(port, n, "warmup-", args.seed), servers=servers)
            _phase(
                "warm-up",
                WARMUP_S,
                _fetchers(port, n, REFUSED_PATH, "refused", 401),
                servers=servers,
            )
            # Planner statistics for the new tables, as autovacuum keeps them on a
            # production server (the shared server here may run without it).
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute("ANALYZE")
            rounds: dict[str, list[PhaseResult]] = {"static": [], "refused": [], "load": []}
            for r in range(args.rounds):
                rounds["static"].append(
                    _phase(
                        "static",
                        args.baseline_seconds,
                        _fetchers(port, n, STATIC_PATH, "static", 200),
                        servers=servers,
                    )
                )
                rounds["refused"].append(
                    _phase(
                        "refused",
                        args.baseline_seconds,
                        _fetchers(port, n, REFUSED_PATH, "refused", 401),
                        servers=servers,
                    )
                )
                rounds["load"].append(
                    _phase(
                        "load",
                        args.seconds,
                        _raters(port, n, "load-", args.seed + 1 + r),
                        servers=servers,
                    )
                )
            static = _merge("baseline: a static file (WhiteNoise)", rounds["static"])
            refused = _merge("baseline: next without a token (401, no query)", rounds["refused"])
            load = _merge("load", rounds["load"])
            load.check = _check(database_url, "load-", load.tally)
            kill = _phase(
                "sigkill",
                args.seconds,
                _raters(port, n, "kill-", args.seed + 100),
                servers=servers,
                kill=_killer(server.pid, args.workers, args.seconds / 2, args.kills, args.seed),
            )
            kill.check = _check(database_url, "kill-", kill.tally)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
            log.close()
        log_text = log_path.read_text(encoding="utf-8", errors="replace")
    load_after = os.getloadavg()

    machine = f"{platform.machine()}, {os.cpu_count()} cpu, Python {platform.python_version()}"
    print(
        f"\nmachine: {machine}; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    print(
        f"gunicorn --workers {args.workers} --threads {args.threads}; PostgreSQL; "
        f"{args.raters} raters; demo study ({args.trials_per_session} trials per session); "
        f"{args.rounds} rounds; setup {setup_seconds:.0f} s"
    )
    for result in (static, refused, load, kill):
        _print_phase(result)
    api_rate = load.per_second("next") + load.per_second("vote")
    votes = len(load.tally.acknowledged)
    if votes:
        used = {**load.server_cpu, "clients": load.client_cpu * load.seconds}
        per_vote = {group: 1000 * t / votes for group, t in used.items()}
        total = sum(per_vote.values())
        cores = os.cpu_count() or 1
        print(
            "\nCPU per vote (a next and a vote): "
            + " + ".join(f"{group} {ms:.2f} ms" for group, ms in per_vote.items())
            + f" = {total:.2f} ms; {cores} idle cores would allow at most "
            f"{1000 * cores / total:.0f} votes/s"
        )
    print()
    for floor, name in ((static, "static"), (refused, "refused")):
        floor_p99 = _quantile(floor.tally.latencies.get(name, []), 0.99)
        p99s = {e: _quantile(load.tally.latencies.get(e, []), 0.99) for e in ("next", "vote")}
        print(
            f"ratio to {name}: API requests/s {api_rate / floor.per_second(name):.2f}; "
            + "; ".join(f"p99 of {e} {p99 / floor_p99:.1f}x" for e, p99 in p99s.items())
        )
    print()
    for line in _verdict(load, kill):
        print(line)
    if args.keep_log:
        print("\ngunicorn log:\n" + log_text)


if __name__ == "__main__":
    main()
