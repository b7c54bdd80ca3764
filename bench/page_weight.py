"""Benchmark: what each kind of page weighs in a real browser, as production serves it.

    .venv/bin/python bench/page_weight.py                 # a small demo clinic (200 patients) on SQLite
    .venv/bin/python bench/page_weight.py --patients 500

Seeds the demo clinic as `make seed` does (the same management commands, fewer patients and two candidate models:
the figures measured here do not grow with the clinic) into a SQLite database of its own under
`var/bench-weight/`, collects the static files, and serves the product with gunicorn and production settings
(DJANGO_ENV=production, DEBUG off, static files hashed, gzipped and served by WhiteNoise; no Redis, so tasks run
in-process). Then Chromium (/usr/bin/chromium, Playwright, a fresh profile per page: nothing cached) signs in as
the role that uses each page and opens it once. Per page, from the browser's own Resource Timing (the document's
navigation entry and every resource it fetched): requests, bytes transferred (headers and bodies as the server
encoded them: gzip for static files when the browser accepts it, HTML uncompressed), body bytes decoded, and the
scripts Chromium marks render-blocking (`renderBlockingStatus`) with their size. The favicon (0.5 KB) is left out:
Chromium fetches it apart from the page, sometimes only after the page is idle, so counting it would make the
figures depend on timing. Writes the "Page weight" section of bench/RESULTS.md.

Targets (issue 32): the patient page at most 300 KB transferred and no render-blocking script over 100 KB; the
dashboards at most 1.6 MB transferred.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from results import machine_summary, write_section  # noqa: E402

BIN = Path(sys.executable).parent
DEMO_SLUG = "demo"
CANDIDATES = "dummy,logistic_regression"
KB = 1000
PATIENT_PAGE_MAX = 300 * KB
DASHBOARD_MAX = 1600 * KB
BLOCKING_SCRIPT_MAX = 100 * KB


@dataclass(frozen=True)
class PageKind:
    name: str
    role: str  # the demo user who opens it ("" for the sign-in page)
    url_name: str
    target: int | None = None  # most bytes transferred allowed, where the issue sets one


@dataclass(frozen=True)
class Weight:
    requests: int
    transferred: int
    decoded: int
    html_transferred: int
    blocking: list[tuple[str, int]]  # render-blocking scripts: (file name, bytes transferred)
    largest: tuple[str, int]  # the heaviest resource: (file name, bytes transferred)
    resources: list[tuple[str, str, int, int]]  # each: (file name, initiator, bytes transferred, bytes decoded)


PAGES = (
    PageKind("sign-in page", "", "login"),
    PageKind("home", "doctor", "home"),
    PageKind("patient list", "doctor", "patients:list"),
    PageKind("patient page", "doctor", "patients:detail", PATIENT_PAGE_MAX),
    PageKind("review queue", "doctor", "recommendations:queue"),
    PageKind("population dashboard", "doctor", "patients:dashboard", DASHBOARD_MAX),
    PageKind("review dashboard", "doctor", "recommendations:dashboard", DASHBOARD_MAX),
    PageKind("model dashboard", "admin", "mltraining:dashboard", DASHBOARD_MAX),
)

# What the browser reports of the page it shows: the document and each resource, as Resource Timing measures them.
RESOURCES_JS = """() => {
  const entries = [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")];
  return entries.map(e => ({name: e.name, type: e.initiatorType, transfer: e.transferSize,
                            encoded: e.encodedBodySize, decoded: e.decodedBodySize,
                            blocking: e.renderBlockingStatus || ""}));
}"""


# --- the server ---------------------------------------------------------------------------------------------------


def _environment(var_dir: Path) -> None:
    """Production settings for this process and for gunicorn, on a SQLite database and a local cache of their own."""
    var_dir.mkdir(parents=True, exist_ok=True)
    for name in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(name, None)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="clinic.settings",
        DJANGO_ENV="production",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        AUDIT_HMAC_KEY=secrets.token_urlsafe(40),
        ALLOWED_HOSTS="localhost,127.0.0.1",
        SECURE_SSL_REDIRECT="false",  # plain HTTP on the loopback; a proxy would terminate TLS in production
        VAR_DIR=str(var_dir),
        OMP_NUM_THREADS="1",
    )


def _command(*args: str) -> None:
    from django.core.management import call_command

    started = time.perf_counter()
    call_command(*args, stdout=io.StringIO(), stderr=io.StringIO())
    print(f"  {args[0]}: {time.perf_counter() - started:.1f} s", flush=True)


def _clinic(n: int):
    """The demo clinic with n patients, scored, advised and partly reviewed; reused when it is already there."""
    from clinic.models import Clinic
    from patients.models import Patient

    clinic = Clinic.objects.filter(slug=DEMO_SLUG).first()
    if clinic is not None and Patient.objects.filter(clinic=clinic).count() == n:
        return clinic
    if clinic is not None:
        Patient.objects.filter(clinic=clinic).delete()
    _command("seed_demo", "--patients", str(n))
    _command("train_model", "--clinic", DEMO_SLUG, "--sync", "--unless-active", "--candidates", CANDIDATES)
    _command("predict_all", "--clinic", DEMO_SLUG)
    _command("seed_demo_reviews", "--clinic", DEMO_SLUG, "--patients", str(max(n // 4, 10)))
    return Clinic.objects.get(slug=DEMO_SLUG)


def _passwords(clinic) -> dict[str, str]:
    """A fresh password for each demo user who opens a page (the seeded ones were printed once and not kept)."""
    from clinic.models import User
    from clinic.services import user_set_password

    passwords = {}
    for username in {page.role for page in PAGES if page.role}:
        passwords[username] = secrets.token_urlsafe(18)
        user_set_password(user=User.objects.get(clinic=clinic, username=username), password=passwords[username])
    return passwords


def _paths(clinic) -> dict[str, str]:
    from django.urls import reverse

    from recommendations.models import Recommendation

    # The patient page at its fullest: a patient with advice, so the risk card, the advice and the radar all show.
    patient_id = Recommendation.objects.filter(clinic=clinic).order_by("-severity", "pk").first().patient_id
    return {
        page.name: reverse(page.url_name, args=[patient_id] if page.url_name == "patients:detail" else [])
        for page in PAGES
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _gunicorn(port: int, var_dir: Path) -> subprocess.Popen:
    log = var_dir / "gunicorn.log"
    server = subprocess.Popen(  # noqa: S603
        [str(BIN / "gunicorn"), "clinic.wsgi:application", "--chdir", str(ROOT), "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--access-logfile", "-"],
        env=os.environ.copy(), stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    for _ in range(120):
        if server.poll() is not None:
            sys.exit(f"gunicorn exited with {server.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):  # noqa: S310
                return server
        except urllib.error.HTTPError:  # it answers (healthz says 503 without a worker): it is up
            return server
        except OSError:
            time.sleep(0.5)
    server.terminate()
    sys.exit(f"gunicorn did not answer within 60 s; see {log}")


# --- the browser --------------------------------------------------------------------------------------------------


def _weigh(browser, base: str, page_kind: PageKind, path: str, password: str) -> Weight:
    """Open one page in a fresh profile (nothing cached), signed in as its role, and read what it fetched."""
    context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    if page_kind.role:
        page.goto("/accounts/login/")
        page.fill("input[name=username]", page_kind.role)
        page.fill("input[name=password]", password)
        with page.expect_navigation():
            page.click("main form [type=submit]")
        page.close()
        # A new page in the same context keeps the session cookie but starts a fresh Resource Timing; the HTTP
        # cache holds what the sign-in page fetched (Bootstrap), so drop it for a first visit's weight.
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.clearBrowserCache")
    page.goto(path)
    page.wait_for_load_state("networkidle")
    if page_kind.role and "/accounts/login/" in page.url:
        sys.exit(f"signing in as {page_kind.role} failed: the {page_kind.name} went to the sign-in page")
    entries = page.evaluate(RESOURCES_JS)
    context.close()
    named = [(e["name"].rsplit("/", 1)[-1].split("?")[0] or "/", e) for e in entries]
    names = [(name, e) for name, e in named if not name.startswith("favicon.")]
    blocking = [(name, e["transfer"]) for name, e in names if e["type"] == "script" and e["blocking"] == "blocking"]
    largest = max(((name, e["transfer"]) for name, e in names), key=lambda item: item[1])
    return Weight(
        requests=len(names),
        transferred=sum(e["transfer"] for _, e in names),
        decoded=sum(e["decoded"] for _, e in names),
        html_transferred=names[0][1]["transfer"],
        blocking=blocking,
        largest=largest,
        resources=[(name, e["type"], e["transfer"], e["decoded"]) for name, e in names],
    )


def _plotly_gzipped() -> tuple[int, int]:
    """plotly.min.js from the installed wheel, raw and gzipped (level 9, as WhiteNoise compresses)."""
    import plotly

    raw = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()
    return len(raw), len(gzip.compress(raw, compresslevel=9))


# --- the report ---------------------------------------------------------------------------------------------------


def _kb(n: int) -> str:
    return f"{n / KB:,.1f}"


def _verdict(kind: PageKind, weight: Weight) -> str:
    checks = []
    if kind.target is not None:
        checks.append(("meets" if weight.transferred <= kind.target else "misses") + f" ≤ {_kb(kind.target)} KB")
    if kind.target == PATIENT_PAGE_MAX:
        heavy = [name for name, size in weight.blocking if size > BLOCKING_SCRIPT_MAX]
        checks.append("no blocking script > 100 KB" if not heavy else f"blocking: {', '.join(heavy)}")
    return "; ".join(checks) or "—"


def _report(args, weights: dict[str, Weight]) -> str:
    raw, packed = _plotly_gzipped()
    lines = [
        f"Each kind of page opened once in Chromium ({args.chromium_version}) with an empty cache, signed in as the "
        f"role that uses it, on the demo clinic with {args.patients:,} patients (`bench/page_weight.py`, "
        f"{time.strftime('%Y-%m-%d')}): gunicorn {version('gunicorn')} with production settings, static files "
        f"served by WhiteNoise {version('whitenoise')} (gzip when the browser accepts it), HTML uncompressed. "
        "Bytes from the browser's Resource Timing: transferred is what crossed the network (headers and encoded "
        "bodies), decoded the bodies after decompression. KB = 1,000 bytes.",
        "",
        machine_summary(),
        "",
        "| page | role | requests | transferred KB | of which HTML | decoded KB | render-blocking scripts | "
        "largest resource (KB transferred) | target |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for kind in PAGES:
        w = weights[kind.name]
        blocking = ", ".join(f"{name} ({_kb(size)} KB)" for name, size in w.blocking) or "none"
        lines.append(
            f"| {kind.name} | {kind.role or 'anonymous'} | {w.requests} | {_kb(w.transferred)} | "
            f"{_kb(w.html_transferred)} | {_kb(w.decoded)} | {blocking} | {w.largest[0]} ({_kb(w.largest[1])}) | "
            f"{_verdict(kind, w)} |"
        )
    lines += [
        "",
        f"plotly.min.js from the installed wheel (plotly {version('plotly')}): {_kb(raw)} KB, {_kb(packed)} KB "
        "gzipped. The wheel ships this one full bundle (and `widgetbundle.js`, the Jupyter widget's, as large); no "
        "partial bundle (`plotly-basic`, `plotly-cartesian`) is installed, so a dashboard that draws with plotly "
        "carries it whole. Brotli (`brotli` not installed) would make WhiteNoise write `.br` files as well.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=200, help="patients of the demo clinic (default 200)")
    parser.add_argument("--resources", action="store_true", help="print each page's resources as well")
    args = parser.parse_args()
    var_dir = Path(os.environ.get("BENCH_WEIGHT_DIR") or ROOT / "var" / "bench-weight")
    _environment(var_dir)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    clinic = _clinic(args.patients)
    passwords = _passwords(clinic)
    paths = _paths(clinic)
    from django.db import connections

    connections.close_all()  # the server's processes write the sessions and audit rows now

    from playwright.sync_api import sync_playwright

    port = _free_port()
    server = _gunicorn(port, var_dir)
    weights = {}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
            )  # fmt: skip
            args.chromium_version = browser.version
            for kind in PAGES:
                weights[kind.name] = _weigh(
                    browser, f"http://localhost:{port}", kind, paths[kind.name], passwords.get(kind.role, "")
                )
                w = weights[kind.name]
                print(f"{kind.name:22} {w.requests:3} requests {_kb(w.transferred):>9} KB transferred "
                      f"{_kb(w.decoded):>9} KB decoded  blocking: {w.blocking or 'none'}", flush=True)  # fmt: skip
                for name, initiator, transferred, decoded in w.resources if args.resources else []:
                    print(f"    {name:40} {initiator:12} {transferred:>10,} {decoded:>10,}", flush=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    write_section("Page weight", _report(args, weights))
    print("wrote the 'Page weight' section of bench/RESULTS.md")


if __name__ == "__main__":
    main()
