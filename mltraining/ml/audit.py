"""Look at the data before fitting anything: duplicates, missingness, tiny classes and leakage suspects.

Exact duplicates are the quiet killer of honest evaluation: a random split puts copies of one row on both
sides, and the test set then rewards memorising. The audit finds them (its `duplicate_groups` feed the
grouped split) and says in plain sentences what else looks wrong.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.tree import DecisionTreeClassifier

MIN_UNIQUE_ROWS_PER_CLASS = 10
LEAK_SCORE = 0.99  # a single feature separating the classes this well is more likely a leak than a finding
MISSING_WARN = 0.5
MAX_WARNED_FEATURES = 8


@dataclass
class DataAudit:
    rows: int
    n_features: int
    missing_rates: dict[str, float]
    duplicate_rows: int  # rows identical (features and label) to an earlier row
    unique_rows: int  # rows - duplicate_rows
    duplicate_groups: np.ndarray  # group id per row: same id = identical feature vector
    label_counts: dict[str, int]
    unique_rows_per_label: dict[str, int]  # distinct feature vectors per label
    warnings: list[str] = field(default_factory=list)

    @property
    def has_duplicates(self) -> bool:
        """Some feature vector occurs more than once (with the same label or not)."""
        return len(np.unique(self.duplicate_groups)) < self.rows

    def to_dict(self) -> dict:
        data = asdict(self)
        del data["duplicate_groups"]
        data["duplicate_share"] = self.duplicate_rows / self.rows if self.rows else 0.0
        return data


def feature_vector_groups(X: pd.DataFrame) -> np.ndarray:
    """Group id per row; rows with identical feature values (missing counts as a value) share one.

    Rows are hashed with pandas' 64-bit row hash: the chance that any two different rows collide is about
    3 in 10^8 for a million rows, and a collision would only merge two groups (a stricter split).
    """
    if X.shape[1] == 0:
        return np.zeros(len(X), dtype=np.int64)
    hashes = pd.util.hash_pandas_object(X, index=False).to_numpy()
    codes, _ = pd.factorize(hashes)
    return codes.astype(np.int64)


def audit_data(X: pd.DataFrame, y: pd.Series) -> DataAudit:
    """Describe the training frame and warn about what would make its evaluation dishonest."""
    y = pd.Series(np.asarray(y, dtype=object).astype(str), index=X.index)
    rows = len(X)
    groups = feature_vector_groups(X)
    full = feature_vector_groups(X.assign(__label__=y.to_numpy()))
    duplicate_rows = int(pd.Series(full).duplicated().sum())
    per_label = pd.DataFrame({"group": groups, "label": y.to_numpy()}).drop_duplicates()
    audit = DataAudit(
        rows=rows,
        n_features=X.shape[1],
        missing_rates={c: float(r) for c, r in X.isna().mean().items()} if rows else {},
        duplicate_rows=duplicate_rows,
        unique_rows=rows - duplicate_rows,
        duplicate_groups=groups,
        label_counts={str(k): int(v) for k, v in y.value_counts().sort_index().items()},
        unique_rows_per_label={str(k): int(v) for k, v in per_label["label"].value_counts().sort_index().items()},
    )
    if rows:
        audit.warnings = _warnings(X, y, audit, per_label)
    return audit


def _warnings(X: pd.DataFrame, y: pd.Series, audit: DataAudit, per_label: pd.DataFrame) -> list[str]:
    found = _duplicate_warnings(audit, per_label)
    found += _class_warnings(audit)
    found += _column_warnings(X, audit)
    found += _leak_warnings(X, y, audit.duplicate_groups)
    return found


def _duplicate_warnings(audit: DataAudit, per_label: pd.DataFrame) -> list[str]:
    found = []
    if audit.duplicate_rows:
        share = audit.duplicate_rows / audit.rows
        found.append(
            f"{audit.duplicate_rows:,} of {audit.rows:,} rows ({share:.0%}) are exact duplicates of an earlier row "
            f"(only {audit.unique_rows:,} unique). A random train/test split would put copies of the same row on "
            "both sides and inflate every score; the split is grouped by identical rows instead."
        )
    conflicting = int((per_label.groupby("group")["label"].nunique() > 1).sum())
    if conflicting:
        found.append(
            f"{conflicting:,} identical feature vectors carry different labels. No model can tell these rows apart; "
            "check the labels or whether a distinguishing feature is missing."
        )
    return found


def _class_warnings(audit: DataAudit) -> list[str]:
    tiny = {k: v for k, v in audit.unique_rows_per_label.items() if v < MIN_UNIQUE_ROWS_PER_CLASS}
    if not tiny:
        return []
    listed = ", ".join(f"{k} ({v})" for k, v in tiny.items())
    return [
        f"Classes with fewer than {MIN_UNIQUE_ROWS_PER_CLASS} unique rows: {listed}. Their figures rest on a "
        "handful of cases and will swing from fold to fold."
    ]


def _column_warnings(X: pd.DataFrame, audit: DataAudit) -> list[str]:
    found = []
    constant = [c for c in X.columns if X[c].nunique(dropna=False) <= 1]
    if constant:
        found.append(f"Constant features (carry no information): {_names(constant)}.")
    id_like = [c for c in X.columns if _looks_like_id(X[c])]
    if id_like:
        found.append(
            f"Features with a different value on every row, like an identifier: {_names(id_like)}. A model can "
            "memorise them; leave identifiers out of the features."
        )
    sparse = [c for c, r in audit.missing_rates.items() if r >= MISSING_WARN]
    if sparse:
        found.append(f"Features missing in at least {MISSING_WARN:.0%} of rows: {_names(sparse)}.")
    return found


def _looks_like_id(column: pd.Series) -> bool:
    """Distinct on every row and either text or whole numbers (continuous measurements are distinct too)."""
    values = column.dropna()
    if len(column) < 20 or len(values) < len(column) or values.nunique() < len(column):
        return False
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return True
    return bool(np.all(np.mod(values.to_numpy(dtype=float), 1) == 0))


def _leak_warnings(X: pd.DataFrame, y: pd.Series, groups: np.ndarray) -> list[str]:
    suspects = [c for c in X.columns if _separates_classes(X[c], y, groups)]
    if not suspects:
        return []
    return [
        f"Leakage suspects: {_names(suspects)} alone separate the classes almost perfectly (balanced accuracy >= "
        f"{LEAK_SCORE}). Check that none of them is derived from the diagnosis or recorded after it."
    ]


def _separates_classes(column: pd.Series, y: pd.Series, groups: np.ndarray) -> bool:
    """Does this one feature predict the label almost perfectly?

    Scored on one row per distinct feature vector: copies of training rows would flag every feature of a
    duplicated frame. Numeric: a shallow tree on the feature alone (twice as many leaves as classes, so it
    can cut the axis into a few intervals but not memorise), scored out of fold. Categorical: the majority
    label of each value, only when values repeat (an identifier is caught by the id check instead).
    Balanced accuracy, because on imbalanced classes plain accuracy rewards predicting the majority.
    """
    _, first = np.unique(groups, return_index=True)
    column, labels = column.iloc[first], y.to_numpy()[first]
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2 or column.nunique() <= 1:
        return False
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        folds = min(3, int(counts.min()))
        if folds < 2:
            return False
        tree = DecisionTreeClassifier(max_leaf_nodes=2 * len(classes), random_state=0)
        x = column.to_numpy(dtype=float).reshape(-1, 1)
        pred = cross_val_predict(tree, x, labels, cv=StratifiedKFold(folds, shuffle=True, random_state=0))
    else:
        values = column.astype(object).where(column.notna(), "<missing>").astype(str)
        if values.nunique() > len(values) / 5:
            return False
        majority = pd.DataFrame({"v": values.to_numpy(), "y": labels}).groupby("v")["y"].agg(lambda s: s.mode()[0])
        pred = values.map(majority).to_numpy()
    recalls = [np.mean(pred[labels == c] == c) for c in classes]
    return float(np.mean(recalls)) >= LEAK_SCORE


def _names(columns: list[str]) -> str:
    shown = ", ".join(str(c) for c in columns[:MAX_WARNED_FEATURES])
    more = len(columns) - MAX_WARNED_FEATURES
    return shown + (f" and {more} more" if more > 0 else "")
