"""The reliability and security suite: adversarial and fault-injection cases, reported in docs/RELIABILITY.md.

Any test in the repository proves a case by carrying `@pytest.mark.reliability(case, tried)`; the pytest
plugin in `reliability.plugin` collects the outcomes and, after a run in which every case ran and none was
skipped (CI: PostgreSQL, Redis, real workers, Chromium), rewrites the report, so it states what the last
complete run showed.
"""
