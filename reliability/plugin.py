"""pytest plugin: the ledgers the test run keeps, docs/RELIABILITY.md (cases) and docs/SAFETY.md (clinical hazards).

A ledger is a list of entries and a marker, `reliability(case, tried)` or `hazard(hazard_id, control)`, by which a
test says which entry it proves and how. Its report is rewritten only after a run in which every entry had a test
and every marked test ran to its result, none skipped, i.e. a full run with PostgreSQL, Redis, real workers and
Chromium (CI); a run stopped early (`-x`, `--maxfail`, Ctrl-C) leaves it alone. A full run that leaves an entry
without any test fails, so an entry cannot silently lose its proof.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from reliability.cases import CASES
from reliability.hazards import HAZARD_IDS
from reliability.report import Row, reliability_report, safety_report

DOCS = Path(__file__).resolve().parent.parent / "docs"
ENVIRONMENT = "PostgreSQL, Redis, real Celery worker processes and Chromium, as in CI"

Key = tuple[str, int | str]  # (test node id, entry)


@dataclass(eq=False)  # a plugin object: compared and hashed by identity, as pluggy expects
class Ledger:
    marker: str  # also the key of a report's entries (user_properties) and of a worker's collected ones
    arguments: tuple[str, str]  # the marker's: the entry, then what the test tried
    noun: str  # what an entry is called in messages
    entries: Sequence[int | str]
    source: str  # the module that lists the entries
    report: Path
    render: Callable[..., str]
    expected: set[Key] = field(default_factory=set)  # (test, entry) of every marked test collected
    rows: dict[Key, Row] = field(default_factory=dict)

    @property
    def description(self) -> str:
        entry, tried = self.arguments
        return (
            f"{self.marker}({entry}, {tried}): the test proves {self.noun} {entry.upper()} of docs/{self.report.name}; "
            f"{tried.upper()} says how"
        )

    def _marks(self, item: pytest.Item) -> Iterator[tuple[int | str, str]]:
        for mark in item.iter_markers(self.marker):
            bound = dict(zip(self.arguments, mark.args, strict=False)) | mark.kwargs
            entry, tried = (bound[name] for name in self.arguments)
            if entry not in self.entries:
                raise pytest.UsageError(f"{item.nodeid}: {self.marker} {self.noun} {entry!r} is not in {self.source}")
            yield entry, tried

    def pytest_collection_modifyitems(self, items):
        for item in items:
            self.expected.update((item.nodeid, entry) for entry, _ in self._marks(item))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        """Carry the entries on the report: with pytest-xdist the report, not the item, reaches the controller."""
        report = yield
        marks = list(self._marks(item))
        if marks:
            report.user_properties.append((self.marker, marks))
        return report

    def pytest_runtest_logreport(self, report):
        marks = next((value for name, value in report.user_properties if name == self.marker), None)
        if not marks:
            return
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed") or report.failed:
            for entry, tried in marks:
                previous = self.rows.get((report.nodeid, entry))
                if previous is None or previous.outcome == "passed":
                    self.rows[(report.nodeid, entry)] = Row(entry, tried, report.outcome, report.nodeid)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error):
        """pytest-xdist controller: the marked tests a worker collected (only workers collect)."""
        self.expected.update(tuple(pair) for pair in node.workeroutput.get(self.marker, []))

    def pytest_sessionfinish(self, session):
        config = session.config
        if hasattr(config, "workerinput"):  # a pytest-xdist worker: its controller writes the report
            config.workeroutput[self.marker] = sorted(self.expected)
            return
        if not _full_run(config):
            return
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        say = reporter.write_line if reporter else lambda line, **markup: None
        missing = self.missing()
        if missing:
            say(f"{self.marker}: no test proves {self.noun}(s) {missing}", red=True)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            return
        reason = self.withheld_because()
        if reason:
            say(f"{self.marker}: {self.report.name} not rewritten, {reason}")
            return
        self.report.parent.mkdir(exist_ok=True)
        self.report.write_text(self.render(list(self.rows.values()), environment=ENVIRONMENT))
        say(f"{self.marker}: wrote {self.report} ({len(self.rows)} results for {len(self.entries)} {self.noun}s)")

    def missing(self) -> list[int | str]:
        """The entries no collected test proves, in the order of their list."""
        proven = {entry for _, entry in self.expected}
        return [entry for entry in self.entries if entry not in proven]

    def withheld_because(self) -> str:
        """Why this run's results must not replace the report ("" when they may)."""
        unreported = self.expected - set(self.rows)
        if unreported:
            return f"the run stopped before {len(unreported)} marked test(s) ran"
        skipped = {row.entry for row in self.rows.values() if row.outcome == "skipped"}
        if skipped:
            return f"{self.noun}(s) {[entry for entry in self.entries if entry in skipped]} skipped (no services)"
        return ""


def _full_run(config: pytest.Config) -> bool:
    """True when pytest ran the configured test paths with no selection (what `make test` does)."""
    selected = config.getoption("keyword") or config.getoption("markexpr") or config.getoption("collectonly")
    return not selected and sorted(config.args) == sorted(config.getini("testpaths"))


def reliability_ledger() -> Ledger:
    return Ledger(marker="reliability", arguments=("case", "tried"), noun="case", entries=[c.number for c in CASES],
                  source="reliability/cases.py", report=DOCS / "RELIABILITY.md", render=reliability_report)  # fmt: skip


def safety_ledger() -> Ledger:
    return Ledger(marker="hazard", arguments=("hazard_id", "control"), noun="hazard", entries=HAZARD_IDS,
                  source="reliability/hazards.py", report=DOCS / "SAFETY.md", render=safety_report)  # fmt: skip


def pytest_configure(config):
    for ledger in (reliability_ledger(), safety_ledger()):
        config.addinivalue_line("markers", ledger.description)
        config.pluginmanager.register(ledger, f"{ledger.marker}-ledger")
