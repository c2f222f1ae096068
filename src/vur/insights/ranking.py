"""Which variables drive a target: fit a regressor on process data, then rank the
variables by permutation importance on held-out rows and mean |SHAP|.

Plain functions, called by the `insights.rank` job and by bench/ranking.py. The model
libraries (scikit-learn, LightGBM, SHAP) are imported inside them.

How the figures are made (docs/architecture.md repeats this for users):
- 80 % of the rows fit the model and 20 % are held out; k-fold cross-validation on the
  training part reports how stable the fit is.
- permutation importance: how much the held-out R² drops when one variable's values
  are shuffled (several repeats: its mean and standard deviation);
- mean |SHAP|: the average size of the variable's contribution to each prediction, in
  the target's units;
- importance = the mean of the two, each first turned into shares that sum to 1; so
  the importances of a ranking sum to 1 and `importance_std` is on the same scale;
- direction: the sign of the correlation between a variable's values and its SHAP
  values (raising a `positive` variable raises the target), `mixed` when neither
  sign holds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Algorithm = Literal["gradient_boosting", "random_forest", "linear"]
ALGORITHMS: tuple[Algorithm, ...] = ("gradient_boosting", "random_forest", "linear")

MIN_ROWS = 30
TEST_FRACTION = 0.2
CV_FOLDS = 5
# Work is bounded on large uploads: cross-validation fits, permutations and SHAP run on
# samples of these sizes (the final model sees every training row).
CV_MAX_ROWS = 30_000
PERMUTATION_MAX_ROWS = 3_000
PERMUTATION_REPEATS = 5
SHAP_MAX_ROWS = 1_000
PDP_MAX_ROWS = 1_000
PDP_TOP_VARIABLES = 5
PDP_GRID = 20
# |correlation| below this between a variable and its SHAP values: no clear direction.
DIRECTION_THRESHOLD = 0.2


class RankingInputError(ValueError):
    """The data cannot be ranked: {field: reason}."""

    def __init__(self, message: str, problems: dict[str, str]) -> None:
        super().__init__(message)
        self.problems = problems


@dataclass
class RankingResult:
    ranking: list[dict[str, Any]]
    metrics: dict[str, Any]
    partial_dependence: list[dict[str, Any]]
    dropped: dict[str, str]
    estimator: Any = field(repr=False)
    features: list[str] = field(default_factory=list)


def usable_features(types: dict[str, str], target: str, requested: list[str] | None) -> tuple[list[str], dict[str, str]]:
    """The columns a ranking can use, from a dataset's detected types, and why the others
    are left out. Requested names must exist and be numeric, boolean or categorical."""
    if requested:
        unknown = [name for name in requested if name not in types]
        if unknown:
            raise RankingInputError(f"Unknown feature columns: {', '.join(unknown)}", {"features": f"not columns of the file: {unknown}"})
        wrong = {name: types[name] for name in requested if types[name] not in ("numeric", "boolean", "categorical")}
        if wrong:
            raise RankingInputError("Some feature columns cannot be used", {"features": f"only numeric, boolean or categorical columns: {wrong}"})
        return [name for name in requested if name != target], {}
    chosen, left_out = [], {}
    for name, kind in types.items():
        if name == target:
            continue
        if kind in ("numeric", "boolean", "categorical"):
            chosen.append(name)
        else:
            left_out[name] = f"{kind} column"
    return chosen, left_out


def compute_ranking(
    frame: Any,
    target: str,
    features: list[str],
    algorithm: Algorithm = "gradient_boosting",
    *,
    seed: int = 0,
    progress: Callable[[float, str], None] | None = None,
) -> RankingResult:
    """Fit, evaluate and rank. `frame` is a Polars DataFrame holding the columns."""
    import numpy as np

    report = progress or (lambda _p, _m: None)
    matrix, y, kept, categorical, dropped = _design_matrix(frame, target, features)
    if len(y) < MIN_ROWS:
        raise RankingInputError(f"Only {len(y)} rows have a target value; at least {MIN_ROWS} are needed", {"rows": f"{len(y)} < {MIN_ROWS}"})
    if not kept:
        raise RankingInputError("Every feature is constant or empty: there is nothing to rank", {"features": "all constant or empty"})
    if float(np.nanstd(y)) == 0.0:
        raise RankingInputError(f"The target '{target}' is constant: nothing can explain it", {"target_column": "constant"})

    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(seed)
    x_train, x_test, y_train, y_test = train_test_split(matrix, y, test_size=TEST_FRACTION, random_state=seed)
    report(10, f"{len(y_train):,} training rows, {len(y_test):,} held out, {len(kept)} variables")

    cv = _cross_validate(algorithm, x_train, y_train, seed, rng)
    report(40, f"Cross-validation R² {cv['r2_mean']:.3f} ± {cv['r2_std']:.3f}")
    estimator = _estimator(algorithm, seed).fit(x_train, y_train)
    predicted = estimator.predict(x_test)
    metrics = {**_scores(y_test, predicted), "n_train": int(len(y_train)), "n_test": int(len(y_test)), "n_features": len(kept), "cv": cv}
    report(55, f"Held-out R² {metrics['r2']:.3f}")

    perm_mean, perm_std = _permutation(estimator, x_test, y_test, seed, rng)
    report(75, "Permutation importance done")
    explain = _sample(x_test, SHAP_MAX_ROWS, rng)
    shap_values = _shap_values(estimator, algorithm, x_train, explain)
    report(85, "SHAP values done")
    native = _native_importance(estimator, algorithm)

    ranking = _combine(kept, categorical, explain, shap_values, perm_mean, perm_std, native)
    top = [item["variable"] for item in ranking if item["variable"] not in categorical][:PDP_TOP_VARIABLES]
    curves = _partial_dependence(estimator, _sample(x_train, PDP_MAX_ROWS, rng), [kept.index(name) for name in top], top)
    report(95, "Partial dependence done")
    return RankingResult(ranking, metrics, curves, dropped, estimator, kept)


def _design_matrix(frame: Any, target: str, features: list[str]) -> tuple[Any, Any, list[str], set[str], dict[str, str]]:
    """Float columns (NaN for missing), categories as integer codes; rows without a target
    dropped; constant or empty variables left out (and said why)."""
    import numpy as np
    import polars as pl

    data = frame.select([target, *features]).filter(pl.col(target).is_not_null() & pl.col(target).cast(pl.Float64, strict=False).is_finite())
    y = data[target].cast(pl.Float64).to_numpy()
    columns, kept, categorical, dropped = [], [], set(), {}
    for name in features:
        series = data[name]
        if series.dtype in (pl.String, pl.Categorical, pl.Enum):
            # Codes in order of first appearance; a tree splits them, a ridge treats the
            # code as a number (the ranking says `mixed` direction for these).
            values = series.cast(pl.String).cast(pl.Categorical).to_physical().cast(pl.Float64).to_numpy()
            values = np.where(series.is_null().to_numpy(), np.nan, values)
            categorical.add(name)
        else:
            values = series.cast(pl.Float64, strict=False).to_numpy()
            values = np.where(np.isfinite(values), values, np.nan)
        present = values[~np.isnan(values)]
        if present.size == 0:
            dropped[name] = "empty"
            categorical.discard(name)
            continue
        if np.all(present == present[0]):
            dropped[name] = "constant"
            categorical.discard(name)
            continue
        columns.append(values)
        kept.append(name)
    matrix = np.column_stack(columns) if columns else np.empty((len(y), 0))
    return matrix, y, kept, categorical, dropped


def _estimator(algorithm: Algorithm, seed: int) -> Any:
    if algorithm == "linear":
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import RidgeCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), RidgeCV(alphas=(0.01, 0.1, 1.0, 10.0, 100.0)))
    from lightgbm import LGBMRegressor

    if algorithm == "random_forest":
        # LightGBM's random-forest mode (bagged, feature-subsampled trees, averaged): the
        # same model family as scikit-learn's forest, but its exact TreeSHAP takes
        # seconds where deep scikit-learn trees took minutes on 10,000 rows.
        # Half the variables drawn at each split, as a forest does (not once per tree).
        return LGBMRegressor(
            boosting_type="rf", n_estimators=100, num_leaves=255, min_child_samples=5, subsample=0.632, subsample_freq=1, feature_fraction_bynode=0.5, random_state=seed, n_jobs=2, verbose=-1
        )
    return LGBMRegressor(n_estimators=200, learning_rate=0.1, num_leaves=15, min_child_samples=10, subsample=0.8, subsample_freq=1, colsample_bytree=0.8, random_state=seed, n_jobs=2, verbose=-1)


def _sample(matrix: Any, size: int, rng: Any) -> Any:
    if len(matrix) <= size:
        return matrix
    return matrix[rng.choice(len(matrix), size=size, replace=False)]


def _scores(actual: Any, predicted: Any) -> dict[str, float]:
    import numpy as np

    error = actual - predicted
    spread = float(np.sum((actual - actual.mean()) ** 2))
    return {
        "r2": _finite(1 - float(np.sum(error**2)) / spread if spread > 0 else 0.0),
        "rmse": _finite(math.sqrt(float(np.mean(error**2)))),
        "mae": _finite(float(np.mean(np.abs(error)))),
    }


def _cross_validate(algorithm: Algorithm, x: Any, y: Any, seed: int, rng: Any) -> dict[str, float]:
    import numpy as np
    from sklearn.model_selection import KFold

    if len(y) > CV_MAX_ROWS:
        chosen = rng.choice(len(y), size=CV_MAX_ROWS, replace=False)
        x, y = x[chosen], y[chosen]
    folds = [_scores(y[test], _estimator(algorithm, seed).fit(x[train], y[train]).predict(x[test])) for train, test in KFold(CV_FOLDS, shuffle=True, random_state=seed).split(x)]
    summary: dict[str, float] = {"folds": CV_FOLDS}
    for name in ("r2", "rmse", "mae"):
        values = np.array([fold[name] for fold in folds])
        summary[f"{name}_mean"], summary[f"{name}_std"] = _finite(float(values.mean())), _finite(float(values.std()))
    return summary


def _permutation(estimator: Any, x: Any, y: Any, seed: int, rng: Any) -> tuple[Any, Any]:
    import numpy as np
    from sklearn.inspection import permutation_importance

    if len(y) > PERMUTATION_MAX_ROWS:
        chosen = rng.choice(len(y), size=PERMUTATION_MAX_ROWS, replace=False)
        x, y = x[chosen], y[chosen]
    result = permutation_importance(estimator, x, y, scoring="r2", n_repeats=PERMUTATION_REPEATS, random_state=seed, n_jobs=1)
    return np.nan_to_num(result.importances_mean), np.nan_to_num(result.importances_std)


def _shap_values(estimator: Any, algorithm: Algorithm, x_train: Any, explain: Any) -> Any:
    import numpy as np
    import shap

    if algorithm == "linear":
        imputer, scaler, ridge = (step for _, step in estimator.steps)
        background = scaler.transform(imputer.transform(x_train))
        values = shap.LinearExplainer(ridge, background).shap_values(scaler.transform(imputer.transform(explain)))
    else:
        values = shap.TreeExplainer(estimator).shap_values(explain, check_additivity=False)
    return np.nan_to_num(np.asarray(values, dtype=float))


def _native_importance(estimator: Any, algorithm: Algorithm) -> Any:
    """What the model itself reports: the trees' total gain from splits on the variable,
    or the ridge's standardized |coefficient|."""
    import numpy as np

    if algorithm == "linear":
        values = np.abs(estimator.steps[-1][1].coef_)
    else:
        values = estimator.booster_.feature_importance(importance_type="gain")
    return np.nan_to_num(np.asarray(values, dtype=float))


def _shares(values: Any) -> Any:
    import numpy as np

    clipped = np.clip(values, 0.0, None)
    total = float(clipped.sum())
    return clipped / total if total > 0 else np.zeros_like(clipped)


def _combine(names: list[str], categorical: set[str], explain: Any, shap_values: Any, perm_mean: Any, perm_std: Any, native: Any) -> list[dict[str, Any]]:
    import numpy as np

    shap_mean_abs = np.abs(shap_values).mean(axis=0)
    shap_share, native_share = _shares(shap_mean_abs), _shares(native)
    perm_total = float(np.clip(perm_mean, 0.0, None).sum())
    if perm_total > 0:
        importance = 0.5 * _shares(perm_mean) + 0.5 * shap_share
        spread = 0.5 * perm_std / perm_total
    else:  # no variable helps the held-out score: SHAP alone says what the model uses
        importance, spread = shap_share, np.zeros_like(shap_share)
    shap_max, native_max = float(shap_mean_abs.max()) or 1.0, float(native.max()) or 1.0
    items = []
    for j, name in enumerate(names):
        items.append(
            {
                "variable": name,
                "importance": _finite(float(importance[j])),
                "importance_std": _finite(float(spread[j])),
                "direction": "mixed" if name in categorical else _direction(explain[:, j], shap_values[:, j]),
                "permutation_importance": _finite(float(perm_mean[j])),
                "permutation_importance_std": _finite(float(perm_std[j])),
                "importance_shap_mean_abs": _finite(float(shap_mean_abs[j])),
                "importance_native": _finite(float(native_share[j])),
                "shap_norm": _finite(float(shap_mean_abs[j]) / shap_max),
                "native_norm": _finite(float(native[j]) / native_max),
            }
        )
    items.sort(key=lambda item: item["importance"], reverse=True)
    for rank, item in enumerate(items, start=1):
        item["rank"] = rank
    return items


def _direction(values: Any, contributions: Any) -> str:
    import numpy as np

    present = ~np.isnan(values)
    if present.sum() < 3 or np.std(values[present]) == 0 or np.std(contributions[present]) == 0:
        return "mixed"
    correlation = float(np.corrcoef(values[present], contributions[present])[0, 1])
    if correlation >= DIRECTION_THRESHOLD:
        return "positive"
    if correlation <= -DIRECTION_THRESHOLD:
        return "negative"
    return "mixed"


def _partial_dependence(estimator: Any, sample: Any, indices: list[int], names: list[str]) -> list[dict[str, Any]]:
    """The model's average prediction as one variable moves over its range (5th to 95th
    percentile), the others kept as they are in the sample."""
    from sklearn.inspection import partial_dependence

    curves = []
    for index, name in zip(indices, names, strict=True):
        result = partial_dependence(estimator, sample, [index], grid_resolution=PDP_GRID, percentiles=(0.05, 0.95), kind="average")
        curves.append({"variable": name, "values": [_finite(float(v)) for v in result["grid_values"][0]], "average": [_finite(float(v)) for v in result["average"][0]]})
    return curves


def _finite(value: float) -> float:
    """JSON has no NaN: the frontends expect numbers, never NaN or infinity."""
    return value if math.isfinite(value) else 0.0
