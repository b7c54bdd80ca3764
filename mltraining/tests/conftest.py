import pytest


@pytest.fixture(autouse=True)
def _training_runs_on_commit(settings):
    """Runs execute on commit here, where a test can wait for them; one test turns the thread back on."""
    settings.TRAINING_RUNS_IN_THREAD = False
