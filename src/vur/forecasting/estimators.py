"""Estimators of our own around scikit-learn's, imported only by the jobs that fit them
(scikit-learn is heavy to import)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import Ridge


class ScaledRidge(Ridge):
    """Ridge that also reports feature importance: each coefficient's size times its
    feature's spread in the training rows (a standardized coefficient), so that a lag of
    values in the thousands and a 0/1 calendar flag compare. Predictions are Ridge's."""

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> ScaledRidge:
        super().fit(X, y, sample_weight)
        self.feature_spread_ = np.nanstd(np.asarray(X, dtype=float), axis=0)
        return self

    @property
    def feature_importances_(self) -> np.ndarray:
        return np.abs(np.ravel(self.coef_)) * self.feature_spread_
