"""mlforecast's recursive forecast from a new history, taken step by step as the library
takes it, without the frames it builds at every step.

`MLForecast.predict(new_df=...)` spends about 4 ms a step on pandas bookkeeping for one
series (a frame of features, then the regressor's scikit-learn wrapper checking it
again): a day ahead of hourly data costs 100 ms, the trees a few of them. Here the same
steps run on arrays: the library's own target transforms, fitted on the history as it
fits them; its own date features; each lag read from the transformed values and the
predictions made so far; the regressor's predict on a matrix in the fitted feature
order; the transforms undone by the library. The result is the library's forecast to
the last bit (the tests compare both for every regressor and transform VUR fits). A
model fitted with anything else (exogenous columns, lag transforms, one model per
horizon) is not `replicated`: it takes the library's call.

Imported only where a fitted mlforecast model is, so its libraries are loaded already.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from mlforecast.grouped_array import GroupedArray
from mlforecast.lag_transforms import Lag
from mlforecast.target_transforms import Differences, LocalStandardScaler


def replicated(fitted: Any) -> bool:
    """Whether `forecast` computes what `fitted.predict(h, new_df=...)` does: a single
    regressor over plain lags and date features, with VUR's target transforms."""
    ts = fitted.ts
    lags = {name for name, transform in ts.transforms.items() if type(transform) is Lag}
    dates = {name for name in ts.date_features if isinstance(name, str)}
    return (
        len(fitted.models_) == 1
        and getattr(ts, "max_horizon", None) is None
        and not ts.date_features_as_dummies
        and len(lags) == len(ts.transforms)
        and len(dates) == len(ts.date_features)
        and set(ts.features_order_) == lags | dates
        and all(type(transform) in (Differences, LocalStandardScaler) for transform in ts.target_transforms or [])
    )


def forecast(fitted: Any, values: Any, lengths: Any, dates: Any, horizon: int) -> Any:
    """The `horizon` points after each series, series by series, of a `replicated` model.
    `values`: the series' targets one after the other (`lengths` each), without NaN, each
    at least as long as the model's differences span; `dates`: the timestamps of the
    points to forecast, series by series."""
    ts = fitted.ts
    # The library's target array: float32 and float64 stay as they are, anything else becomes float32.
    values = np.asarray(values)
    series = GroupedArray(values if values.dtype in (np.float32, np.float64) else values.astype(np.float32), np.append(0, np.cumsum(lengths)).astype(np.int32))
    transforms = copy.deepcopy(ts.target_transforms or [])  # each fitted on this history, as the library fits a copy
    for transform in transforms:
        series = transform.fit_transform(series)

    count, order = len(lengths), ts.features_order_
    lag_of = {name: transform.lag for name, transform in ts.transforms.items()}
    lag_columns = [at for at, name in enumerate(order) if name in lag_of]
    lags = np.array([lag_of[order[at]] for at in lag_columns], dtype=np.int64)
    # Each series' latest transformed values, right-aligned before room for the predictions;
    # a lag reaching before a short series' start reads NaN, as the library's does.
    depth = int(lags.max(initial=1))
    recent = np.full((count, depth + horizon), np.nan, dtype=series.data.dtype)
    for row in range(count):
        kept = series.data[series.indptr[row] : series.indptr[row + 1]][-depth:]
        recent[row, depth - len(kept) : depth] = kept

    # Step by step, each series' features (a contiguous matrix per step, as a model reads it).
    features = np.empty((horizon, count, len(order)))
    steps = pd.DatetimeIndex(dates)
    for name in ts.date_features:  # they do not depend on the predictions: every step at once
        features[:, :, order.index(name)] = np.asarray(ts._compute_date_feature(steps, name)[name]).reshape(count, horizon).T
    predict = _predictor(next(iter(fitted.models_.values())), order)
    raw = np.empty((count, horizon))
    for step in range(horizon):
        features[step][:, lag_columns] = recent[:, depth + step - lags]
        raw[:, step] = predict(features[step])
        recent[:, depth + step] = raw[:, step]  # stored in the target's dtype, as the library appends it

    points = GroupedArray(raw.ravel().astype(series.data.dtype), np.arange(0, count * horizon + 1, horizon, dtype=np.int32))
    for transform in reversed(transforms):
        points = transform.inverse_transform(points)
    return np.asarray(points.data, dtype=np.float64)


def _predictor(model: Any, order: list[str]) -> Callable[[Any], Any]:
    """The model's predict on a matrix of features in `order`. LightGBM's and XGBoost's
    read the matrix as the frame the library would give them (its columns become floats);
    scikit-learn's estimators are given such a frame, as they check the feature names,
    its values column by column as in the library's (a row's sum runs in that order)."""
    library = type(model).__module__.partition(".")[0]
    if library == "lightgbm":
        # The booster itself: its scikit-learn wrapper costs a millisecond a call reading its
        # own parameters. One thread, as the wrapper asks for VUR's models (fitted with one):
        # left to OpenMP, each step's few rows would wait for a thread per core to be scheduled.
        return functools.partial(model.booster_.predict, num_threads=1)
    if library == "xgboost":
        return model.predict
    return lambda matrix: model.predict(pd.DataFrame(np.asfortranarray(matrix), columns=order))
