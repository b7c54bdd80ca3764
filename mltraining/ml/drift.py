"""Input and prediction drift: recent feature rows compared with the training distribution by PSI.

The population stability index (PSI) of two distributions over the same bins is
sum((actual - expected) * ln(actual / expected)). Conventional bands, used by credit-risk model monitoring
since Siddiqi (Credit Risk Scorecards, 2006): below 0.1 stable, 0.1 to 0.25 a moderate shift worth a look,
above 0.25 a major shift that needs investigating before the model's output is trusted.

- Numeric features are binned at the deciles of the training values (fewer bins where values tie), and
  "missing" is one more bin: a lab that stops arriving, or starts failing validation, is drift too.
- A unit change (creatinine arriving in mg/dL where umol/L is expected) moves nearly every value into one
  end bin and gives a PSI far above 0.25. This is the check that catches it: features.py never converts.
- Categorical features and the predicted class mix are compared share by share; a category never seen in
  training counts with a share of zero there.
- Zero shares are replaced by `epsilon`, so one empty bin gives a large but finite PSI.
- With few recent rows PSI is noisy (sampling alone gives about bins / n): read it together with `n`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

STABLE, MODERATE, MAJOR = "stable", "moderate", "major"
NO_DATA = "no_data"  # no recent rows: nothing to compare
DECILES = np.linspace(0.1, 0.9, 9)
_SEVERITY = {NO_DATA: -1, STABLE: 0, MODERATE: 1, MAJOR: 2}


def band(value: float | None) -> str:
    """The PSI band: < 0.1 stable, 0.1 to 0.25 moderate, > 0.25 major; no PSI means no data."""
    if value is None:
        return NO_DATA
    if value < 0.1:
        return STABLE
    return MODERATE if value <= 0.25 else MAJOR


def psi(expected_shares, actual_shares, *, epsilon: float = 1e-4) -> float:
    """PSI of two share vectors over the same bins, or of two {bin: share} mappings (over the union of bins).

    Each side is normalised to sum to one, so counts work as well as shares.
    """
    if isinstance(expected_shares, Mapping) or isinstance(actual_shares, Mapping):
        keys = sorted(set(expected_shares) | set(actual_shares), key=str)
        expected_shares = [expected_shares.get(k, 0.0) for k in keys]
        actual_shares = [actual_shares.get(k, 0.0) for k in keys]
    expected, actual = _normalised(expected_shares), _normalised(actual_shares)
    if expected.shape != actual.shape:
        raise ValueError(f"PSI needs the same bins on both sides, got {expected.size} and {actual.size}")
    expected, actual = np.maximum(expected, epsilon), np.maximum(actual, epsilon)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def reference_profile(
    X: pd.DataFrame, *, numeric: list[str], categorical: list[str], predicted: pd.Series | None = None
) -> dict:
    """The training distribution, JSON-serialisable, to store with the model version."""
    if X.empty:
        raise ValueError("A reference profile needs at least one training row")
    return {
        "n": len(X),
        "numeric": {name: _numeric_profile(X[name]) for name in numeric},
        "categorical": {name: _categorical_profile(X[name]) for name in categorical},
        "predicted": None if predicted is None else _shares(predicted),
    }


def drift_report(reference: dict, X_recent: pd.DataFrame, *, predicted_recent: pd.Series | None = None) -> dict:
    """Each feature's PSI and band against `reference`, worst first; the predicted class mix if given."""
    missing = [name for name in (*reference["numeric"], *reference["categorical"]) if name not in X_recent]
    if missing:
        raise ValueError(f"Recent rows lack features of the reference profile: {', '.join(missing)}")
    features = {name: _numeric_drift(ref, X_recent[name]) for name, ref in reference["numeric"].items()}
    features |= {name: _categorical_drift(ref, X_recent[name]) for name, ref in reference["categorical"].items()}
    predictions = None
    if reference.get("predicted") is not None and predicted_recent is not None:
        recent = _shares(predicted_recent)
        value = psi(reference["predicted"], recent) if recent else None
        predictions = {"psi": value, "band": band(value), "reference": reference["predicted"], "recent": recent}
    scored = sorted((item for item in features.items() if item[1]["psi"] is not None), key=lambda i: -i[1]["psi"])
    bands = [f["band"] for f in features.values()] + ([predictions["band"]] if predictions else [])
    return {
        "features": features,
        "predictions": predictions,
        "worst": [name for name, _ in scored[:5]],
        "overall_band": max(bands, key=_SEVERITY.__getitem__, default=NO_DATA),
        "n_recent": len(X_recent),
    }


def _numeric_profile(column: pd.Series) -> dict:
    values = _finite(column)
    edges = np.unique(np.quantile(values, DECILES)) if len(values) else np.array([])
    return {
        "edges": [float(e) for e in edges],
        "shares": _bin_shares(values, edges),
        "missing_share": _missing_share(column, values),
    }


def _numeric_drift(ref: dict, column: pd.Series) -> dict:
    if len(column) == 0:
        return _no_data()
    values = _finite(column)
    edges = np.asarray(ref["edges"], dtype=float)
    missing = _missing_share(column, values)
    expected = [s * (1 - ref["missing_share"]) for s in ref["shares"]] + [ref["missing_share"]]
    actual = [s * (1 - missing) for s in _bin_shares(values, edges)] + [missing]
    value = psi(expected, actual)
    return {"psi": value, "band": band(value), "n": int(len(values)), "missing_share": missing}


def _categorical_profile(column: pd.Series) -> dict:
    present = column.dropna()
    return {"shares": _shares(present), "missing_share": _missing_share(column, present)}


def _categorical_drift(ref: dict, column: pd.Series) -> dict:
    if len(column) == 0:
        return _no_data()
    present = column.dropna()
    missing = _missing_share(column, present)
    expected = {k: s * (1 - ref["missing_share"]) for k, s in ref["shares"].items()} | {None: ref["missing_share"]}
    actual = {k: s * (1 - missing) for k, s in _shares(present).items()} | {None: missing}
    value = psi(expected, actual)
    return {"psi": value, "band": band(value), "n": int(len(present)), "missing_share": missing}


def _no_data() -> dict:
    return {"psi": None, "band": NO_DATA, "n": 0, "missing_share": None}


def _finite(column: pd.Series) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return values[np.isfinite(values)]


def _bin_shares(values: np.ndarray, edges: np.ndarray) -> list[float]:
    """Shares of `values` in the bins (-inf, e1], (e1, e2], ..., (ek, inf); zeros when there are no values."""
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    return [float(c) for c in counts / max(len(values), 1)]


def _missing_share(column: pd.Series, present) -> float:
    return float(1 - len(present) / len(column)) if len(column) else 0.0


def _shares(column: pd.Series) -> dict[str, float]:
    """Share of each value, keyed by its string form (JSON object keys are strings)."""
    counts = column.dropna().astype(str).value_counts(normalize=True, sort=False)
    return {str(k): float(v) for k, v in sorted(counts.items())}


def _normalised(shares: Sequence[float]) -> np.ndarray:
    values = np.asarray(shares, dtype=float)
    total = values.sum()
    if not np.isfinite(total) or total <= 0:
        raise ValueError("PSI needs shares that sum to a positive number")
    return values / total
