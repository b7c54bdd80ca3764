"""Pure-Python training core: audit, candidate models, training, metrics, plots and artifacts.

No Django here: the same code runs in a notebook, a benchmark and a Celery worker.
"""
