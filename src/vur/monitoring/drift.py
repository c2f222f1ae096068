"""Drift: do the values a model sees and says now look like what it was trained on?

For a forecaster the inputs are the observed values of its target (the actual values
that reached it after training, recorded on its predictions) and, for one trained with
exogenous columns, the future values of each that its requests gave; its outputs are
the forecasts it made, one value per forecast point (series and timestamp, as the
training values are): the newest forecast of it. The target's values and its forecasts
are compared with the target values of its training history, each exogenous column
with that column's, by the Population Stability Index (ten bins at the training
deciles) and the two-sample Kolmogorov-Smirnov test. A part drifts when the KS p-value
< 0.01, given at least MIN_POINTS recent values, or when PSI > 0.25 given
PSI_MIN_POINTS: over fewer values PSI's chance deviations alone pass 0.25 (about
(bins - 1) / n expected; 0.26 measured for 36 values drawn like the training ones),
while KS's p-value allows for the count. Both read the recent values as a sample of
the whole history: values that cover only part of a seasonal cycle (forecasts of a
horizon shorter than the season, from one moment) can differ from it with nothing
changed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vur.core.storage import ArtifactStore
from vur.predictions import service as predictions
from vur.predictions.models import Prediction
from vur.registry.models import RegisteredModel

PSI_DRIFT = 0.25
KS_PVALUE_DRIFT = 0.01
MIN_POINTS = 30
PSI_MIN_POINTS = 100  # ten a bin
WINDOW = timedelta(days=7)
RECENT_PREDICTIONS = 500


def population_stability_index(reference: Any, recent: Any, bins: int = 10) -> float:
    """PSI of `recent` against `reference`, over bins at the reference's quantiles."""
    import numpy as np

    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:  # a constant reference: all mass in one bin
        edges = np.array([reference[0] - 0.5, reference[0] + 0.5])
    edges[0], edges[-1] = -np.inf, np.inf
    expected = np.histogram(reference, edges)[0] / len(reference)
    actual = np.histogram(recent, edges)[0] / len(recent)
    expected, actual = np.clip(expected, 1e-6, None), np.clip(actual, 1e-6, None)  # empty bins would be infinite
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _part(name: str, reference: Any, values: list[float]) -> dict[str, Any]:
    from scipy.stats import ks_2samp

    if len(values) < MIN_POINTS:
        return {"name": name, "count": len(values), "psi": None, "ks_statistic": None, "ks_pvalue": None, "drifted": False}
    psi = population_stability_index(reference, values)
    ks = ks_2samp(reference, values)
    return {
        "name": name,
        "count": len(values),
        "psi": round(psi, 6),
        "ks_statistic": round(float(ks.statistic), 6),
        "ks_pvalue": float(ks.pvalue),
        "drifted": (psi > PSI_DRIFT and len(values) >= PSI_MIN_POINTS) or float(ks.pvalue) < KS_PVALUE_DRIFT,
    }


def drift_report(session: Session, store: ArtifactStore, model: RegisteredModel, now: datetime) -> dict[str, Any]:
    import numpy as np

    from vur.forecasting.forecasters import original_units

    version = predictions.servable_version(session, model, None)
    _, forecaster = predictions.fitted_model(store, model, version)
    reference = original_units(model.config)(forecaster.history[["y"]])["y"].to_numpy(float)
    recent = session.execute(
        select(Prediction.outputs, Prediction.input_summary)
        .where(Prediction.model_id == model.id, Prediction.created_at >= now - WINDOW)
        .order_by(Prediction.created_at.desc())
        .limit(RECENT_PREDICTIONS)
    ).all()
    # One value per observed point, however many forecasts it scored.
    observed = list({(p["series_id"], p["timestamp"]): p["actual"] for outputs, _ in recent for p in outputs if "actual" in p}.values())
    # The newest forecast of each point (`recent` runs newest first): the same request
    # made fifty times says nothing new, and would otherwise weigh fifty times.
    forecast = list({(p["series_id"], p["timestamp"]): p["value"] for outputs, _ in reversed(recent) for p in outputs}.values())
    parts = [_part("observed", reference, observed), _part("predicted", reference, forecast)]
    for column in forecaster.exogenous:
        # The training values in the units of the upload, as requests give them.
        undo = (model.config.get("exogenous_restoration") or {}).get(column)
        trained = original_units({"target_restoration": undo})(forecaster.history[[column]].rename(columns={column: "y"}))["y"].to_numpy(float)
        given = [value for _, summary in recent for value in ((summary or {}).get("exogenous") or {}).get(column, [])]
        parts.append(_part(column, trained[~np.isnan(trained)], given))
    return {
        "model_id": model.id,
        "version": version.number,
        "training_points": int(len(reference)),
        "training_mean": float(np.mean(reference)),
        "window_days": WINDOW.days,
        "features": parts,
        "drifted": any(p["drifted"] for p in parts),
        "thresholds": {"psi": PSI_DRIFT, "psi_min_points": PSI_MIN_POINTS, "ks_pvalue": KS_PVALUE_DRIFT, "min_points": MIN_POINTS},
    }
