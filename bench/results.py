"""Shared by the benchmark scripts: describe the machine, and write one section of bench/RESULTS.md."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import sysconfig
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = (
    "# Benchmark results\n\n"
    "Written by the scripts in `bench/` (see `bench/README.md`); each section is replaced when its script runs "
    "again. Every ratio compares figures measured in the same run on the same machine.\n"
)


def _postgres_version() -> str:
    try:
        out = subprocess.run(["psql", "--version"], capture_output=True, text=True, check=False, timeout=5)  # noqa: S607
    except OSError:
        return "unknown"
    found = re.search(r"\d+\.\d+", out.stdout or "")
    return found.group(0) if found else "unknown"


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def interpreter() -> str:
    """Which CPython build runs the benchmark: the same code's CPU figures differ by a tenth to a third between a
    build without profile-guided optimisation and an optimised one such as the image's (RESULTS.md, "A clinic's
    load"). Debian's optimised build does not say so in its configure arguments; its prefix, /usr, does."""
    configured = sysconfig.get_config_var("CONFIG_ARGS") or ""
    flags = "".join(f", {flag}" for flag in ("--enable-optimizations", "--with-lto") if flag in configured)
    return f"Python {platform.python_version()} ({sys.base_prefix}{flags})"


def machine_summary() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        cpu = found.group(1).strip() if found else cpu
    names = ("django", "numpy", "scikit-learn", "celery", "psycopg")
    packages = ", ".join(f"{name} {_version(name)}" for name in names)
    return f"Machine: {os.cpu_count()} cores ({cpu}), {interpreter()}, PostgreSQL {_postgres_version()}; {packages}."


def write_section(title: str, body: str) -> None:
    """Replace (or append) the `## title` section of RESULTS.md."""
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    RESULTS.write_text(text.rstrip() + "\n")
