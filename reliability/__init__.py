"""The reliability and security suite, reported in docs/RELIABILITY.md, and the clinical hazard log, docs/SAFETY.md.

Any test in the repository proves a reliability case by carrying `@pytest.mark.reliability(case, tried)`, and
shows that the control of a clinical hazard holds by carrying `@pytest.mark.hazard(hazard_id, control)`. The
pytest plugin in `reliability.plugin` keeps one ledger per marker: it collects the outcomes and, after a full run
in which every case and hazard had a test and none was skipped (CI: PostgreSQL, Redis, real workers, Chromium),
rewrites the report, so it states what the last complete run showed. The cases are listed in
`reliability.cases`, the hazards in `reliability.hazards`.
"""
