"""Time from a vote's key press to the next trial's images painted, in Chromium.

Run: .venv/bin/python bench/viewer.py [--trials N] [--port P]

Builds a copy of the demo study (512-pixel images, no screening) in a
temporary directory, serves it with `manage.py serve`, and lets a scripted
rater in headless Chromium answer N trials as soon as each may be answered.
The viewer records, for every counted trial, the milliseconds from the key
press to two animation frames after the next trial's images were put on the
page (window.codecArenaTimings).

Two phases in the same run:
- lookahead: as shipped — the API issues one trial ahead and the viewer loads
  its images while the rater judges the current one;
- baseline: the same viewer with the lookahead removed from every API answer
  (by rewriting the responses), so each trial is fetched and decoded only
  after the vote, as a viewer without prefetch would do.

Target (issue 6): median and p95 of the lookahead phase within 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our local server
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, check=True)


def _strip_lookahead(route: Any) -> None:
    response = route.fetch()
    body = response.json()
    body.pop("next", None)
    route.fulfill(response=response, body=json.dumps(body))


def _rate(
    browser: Any, base: str, participant: str, trials: int, *, lookahead: bool
) -> list[float]:
    context = browser.new_context(viewport={"width": 1700, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    if not lookahead:
        page.route("**/api/v1/sessions/*/next", _strip_lookahead)
    page.goto(f"{base}/r/bench/?participant={participant}")
    page.click("#consent")
    page.wait_for_url("**/rate/")
    answered = 0
    while answered < trials:
        page.wait_for_selector("#viewer[data-ready='1']")
        practice = page.is_visible("[data-practice]")
        page.keyboard.press("ArrowLeft" if answered % 2 else "ArrowRight")
        page.wait_for_function(
            "() => document.getElementById('viewer').dataset.ready !== '1'"
            " || location.pathname.endsWith('/done/')"
        )
        if "/done/" in page.url:
            break
        answered += 0 if practice else 1
    page.wait_for_timeout(300)
    timings = [float(t) for t in page.evaluate("() => window.codecArenaTimings || []")]
    context.close()
    return timings


def _summary(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered):6.1f} ms, p95 {p95:6.1f} ms (n={len(ordered)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if chromium is None:
        sys.exit("no Chromium found (install Debian's chromium or set CHROMIUM)")
    port = args.port or _free_port()
    with tempfile.TemporaryDirectory(prefix="codec-arena-bench-") as var:
        env = {**os.environ, "VAR_DIR": var, "DATABASE_URL": f"sqlite:///{var}/db.sqlite3"}
        _manage(env, "migrate", "--noinput", "-v0")
        _manage(env, "demo_study", "--slug", "bench", "--no-screening")
        # Enough counted trials for each rater; no golden trials, which the
        # scripted rater (as blind as a person) could fail.
        _manage(
            env,
            "shell",
            "-c",
            "from studies.models import Study; Study.objects.filter(slug='bench')"
            f".update(trials_per_session={args.trials + 2}, golden_rate=0)",
        )
        server = subprocess.Popen(  # noqa: S603
            [sys.executable, "manage.py", "serve", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_for(f"{base}/r/bench/?participant=probe")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=chromium, headless=True, args=CHROMIUM_ARGS
                )
                fast = _rate(browser, base, "lookahead", args.trials, lookahead=True)
                slow = _rate(browser, base, "baseline", args.trials, lookahead=False)
                version = browser.version
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=20)

    print(f"machine: {platform.machine()}, {os.cpu_count()} cpu; Chromium {version}")
    print("key press -> next trial's images painted, demo images (512 px), 1:1 pixels")
    print(f"  lookahead (as shipped): {_summary(fast)}")
    print(f"  baseline (no lookahead): {_summary(slow)}")
    ratio = statistics.median(slow) / statistics.median(fast)
    print(f"  ratio of medians baseline / lookahead: {ratio:.1f}x")


if __name__ == "__main__":
    main()
