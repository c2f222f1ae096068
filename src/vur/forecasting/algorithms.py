"""The algorithm catalogue: what can be trained, and the parameters each accepts.

Each entry's `parameters` is the schema that configure/train validate against, and
`engine` names the library that runs it (see engines.py): for statsforecast, `build`
makes one of its models; for mlforecast, a scikit-learn style regressor that is fed
lag features. Model libraries are imported inside `build`, so the API process never
loads them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vur.forecasting.exceptions import InvalidHyperparameters, UnknownAlgorithm


@dataclass(frozen=True)
class Parameter:
    type: str  # "int" | "float" | "choice" | "bool"
    default: Any
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    description: str = ""
    # Tuned by default when optimisation is asked without a search space: a numeric
    # range (low, high, log scale?) or, for choices and booleans, True.
    search: tuple[float, float, bool] | bool | None = None

    def to_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": self.type, "default": self.default}
        for key in ("min", "max", "description"):
            if (value := getattr(self, key)) not in (None, ""):
                schema[key] = value
        if self.choices is not None:
            schema["choices"] = list(self.choices)
        return schema

    def default_search(self) -> dict[str, Any] | None:
        """This parameter's dimension in a default search space, if it has one."""
        if self.search is None:
            return None
        if self.type == "bool":
            return {"type": "bool", "choices": [False, True]}
        if self.type == "choice":
            return {"type": "choice", "choices": list(self.choices or ())}
        low, high, log = self.search  # type: ignore[misc]
        return {"type": self.type, "min": low, "max": high, "log": log}

    def check(self, name: str, value: Any) -> str | None:
        if value is None and self.default is None:  # "automatic", where the default is
            return None
        if self.type == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            return f"{name} must be an integer"
        if self.type == "float" and (isinstance(value, bool) or not isinstance(value, int | float)):
            return f"{name} must be a number"
        if self.type == "float" and not math.isfinite(value):  # JSON's NaN passes every comparison with the bounds
            return f"{name} must be a finite number"
        if self.type == "bool" and not isinstance(value, bool):
            return f"{name} must be true or false"
        if self.choices is not None and value not in self.choices:
            return f"{name} must be one of {list(self.choices)}"
        if self.min is not None and value < self.min:
            return f"{name} must be at least {self.min}"
        if self.max is not None and value > self.max:
            return f"{name} must be at most {self.max}"
        return None


_HISTORY_PARAMETERS = ("lags", "seasonal_lags", "season_length", "difference", "input_size", "cv_windows", "p", "d", "q", "P", "D", "Q")


@dataclass(frozen=True)
class Algorithm:
    id: str
    name: str
    family: str  # "classical" | "machine_learning" | "deep_learning"
    description: str
    build: Callable[[dict[str, Any]], Any] | None
    parameters: dict[str, Parameter] = field(default_factory=dict)
    # Rules that involve several parameters: returns {parameter: problem}.
    check: Callable[[dict[str, Any]], dict[str, str]] | None = None
    engine: str = "statsforecast"  # | "mlforecast" | "prophet" | "keras" | "auto"
    # False for what is configured elsewhere (custom networks, POST /models/custom).
    listed: bool = True

    def history_needed(self, params: dict[str, Any], horizon: int, windows: int) -> int:
        """Observations a series needs for `windows` held-out windows of one horizon and
        the fit before the first of them."""
        return horizon * windows + self.min_history(params, horizon)

    def history_parameters(self) -> list[str]:
        """The parameters that set how much history min_history asks for."""
        return [name for name in self.parameters if name in _HISTORY_PARAMETERS]

    def min_history(self, params: dict[str, Any], horizon: int) -> int:
        """Observations a series needs before this algorithm can fit it."""
        season = params.get("season_length") or 1
        if self.engine == "auto":
            # Its backtest windows, and enough before them for the simplest candidate.
            return params["cv_windows"] * horizon + 2
        if self.engine == "keras":
            from vur.forecasting.architectures import AUTO_INPUT_RANGE, MIN_WINDOWS

            # Its input window and horizon, for at least MIN_WINDOWS windows to learn from.
            return (params.get("input_size") or AUTO_INPUT_RANGE[0]) + horizon + MIN_WINDOWS - 1
        if self.engine == "mlforecast":
            # The longest lag, the differencing it undoes, and a season of rows to learn from.
            return max(lag_list(params)) + (season if params["difference"] == "seasonal" else 1) + season + 1
        if self.id in ("arima", "sarima"):
            # statsforecast's conditional sum of squares starts d + D·s + p + P·s points in; the
            # moving-average terms reach q + Q·s back.
            orders = (params["d"], params.get("D", 0)), (params["p"], params.get("P", 0)), (params["q"], params.get("Q", 0))
            return sum(plain + seasonal * season for plain, seasonal in orders) + 1
        if self.id == "ets":
            # statsforecast fits ETS only on more points than its parameters and 4 ("tiny datasets").
            parameters = 2 + 2 * (params["trend"] != "N") + 2 * (params["seasonality"] != "N") + int(params["damped"])
            return max(season + 1, parameters + 5)
        return season + 1

    def to_schema(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "parameters": {name: p.to_schema() for name, p in self.parameters.items()},
        }

    def default_search_space(self) -> dict[str, dict[str, Any]]:
        return {name: dimension for name, p in self.parameters.items() if (dimension := p.default_search()) is not None}

    def resolve(self, given: dict[str, Any]) -> dict[str, Any]:
        """Defaults filled in; unknown or out-of-range values are a 422 naming each."""
        problems = {name: "unknown parameter" for name in given if name not in self.parameters}
        for name, parameter in self.parameters.items():
            if name in given and (problem := parameter.check(name, given[name])):
                problems[name] = problem
        resolved = {name: given.get(name, p.default) for name, p in self.parameters.items()}
        if not problems and self.check is not None:
            problems = self.check(resolved)
        if problems:
            raise InvalidHyperparameters(f"Invalid hyperparameters for {self.id}", problems)
        return resolved


def lag_list(params: dict[str, Any]) -> list[int]:
    """The regressors' lag features: recent lags 1..lags, then whole seasons back
    (2·m .. seasonal_lags·m)."""
    season = params["season_length"]
    seasonal = [k * season for k in range(2, params["seasonal_lags"] + 1)] if season > 1 else []
    return sorted(set(range(1, params["lags"] + 1)) | set(seasonal))


def _naive(_: dict[str, Any]) -> Any:
    from statsforecast.models import Naive

    return Naive()


def _seasonal_naive(params: dict[str, Any]) -> Any:
    from statsforecast.models import SeasonalNaive

    return SeasonalNaive(season_length=params["season_length"])


def _historic_average(_: dict[str, Any]) -> Any:
    from statsforecast.models import HistoricAverage

    return HistoricAverage()


def _arima(params: dict[str, Any]) -> Any:
    from statsforecast.models import ARIMA

    return ARIMA(
        order=(params["p"], params["d"], params["q"]),
        season_length=params.get("season_length", 1),
        seasonal_order=(params.get("P", 0), params.get("D", 0), params.get("Q", 0)),
        include_drift=params["include_drift"],
    )


def _auto_arima(params: dict[str, Any]) -> Any:
    from statsforecast.models import AutoARIMA

    return AutoARIMA(season_length=params["season_length"], max_p=params["max_p"], max_q=params["max_q"], approximation=params["approximation"])


def _ets(params: dict[str, Any]) -> Any:
    from statsforecast.models import AutoETS

    # A fully specified model string makes AutoETS fit exactly that ETS model.
    model = params["error"] + params["trend"] + params["seasonality"]
    return AutoETS(season_length=params["season_length"], model=model, damped=params["damped"])


def _auto_ets(params: dict[str, Any]) -> Any:
    from statsforecast.models import AutoETS

    return AutoETS(season_length=params["season_length"])


def _theta(params: dict[str, Any]) -> Any:
    from statsforecast.models import Theta

    return Theta(season_length=params["season_length"], decomposition_type=params["decomposition"])


def _auto_theta(params: dict[str, Any]) -> Any:
    from statsforecast.models import AutoTheta

    return AutoTheta(season_length=params["season_length"])


def _mstl(params: dict[str, Any]) -> Any:
    from statsforecast.models import MSTL, AutoETS

    seasons = [params["season_length"]] + ([params["second_season"]] if params["second_season"] else [])
    # The deseasonalised remainder is forecast by an exponential-smoothing trend model.
    return MSTL(season_length=seasons, trend_forecaster=AutoETS(model="ZZN"))


def _lightgbm(params: dict[str, Any]) -> Any:
    from lightgbm import LGBMRegressor

    return LGBMRegressor(
        n_estimators=params["n_estimators"],
        learning_rate=params["learning_rate"],
        num_leaves=params["num_leaves"],
        min_child_samples=params["min_child_samples"],
        random_state=params["seed"],
        verbosity=-1,
        # One thread: jobs already run in parallel processes, and OpenMP threads that
        # spin-wait on a busy machine make a fit many times slower, not faster.
        n_jobs=1,
    )


def _xgboost(params: dict[str, Any]) -> Any:
    from xgboost import XGBRegressor

    return XGBRegressor(n_estimators=params["n_estimators"], learning_rate=params["learning_rate"], max_depth=params["max_depth"], random_state=params["seed"], n_jobs=1)


def _random_forest(params: dict[str, Any]) -> Any:
    from sklearn.ensemble import RandomForestRegressor

    return RandomForestRegressor(
        n_estimators=params["n_estimators"],
        max_depth=params["max_depth"] or None,
        min_samples_leaf=params["min_samples_leaf"],
        random_state=params["seed"],
        n_jobs=1,
    )


def _ridge(params: dict[str, Any]) -> Any:
    from vur.forecasting.estimators import ScaledRidge

    return ScaledRidge(alpha=params["alpha"])


def _prophet(params: dict[str, Any]) -> Any:
    from prophet import Prophet

    return Prophet(
        growth=params["growth"],
        seasonality_mode=params["seasonality_mode"],
        changepoint_prior_scale=params["changepoint_prior_scale"],
        seasonality_prior_scale=params["seasonality_prior_scale"],
        uncertainty_samples=params["uncertainty_samples"],
    )


def _mstl_rules(params: dict[str, Any]) -> dict[str, str]:
    if params["second_season"] and params["second_season"] <= params["season_length"]:
        return {"second_season": "must be longer than season_length (or 0 for none)"}
    return {}


def _ets_rules(params: dict[str, Any]) -> dict[str, str]:
    problems = {}
    if params["damped"] and params["trend"] == "N":
        problems["damped"] = "a damped model needs a trend (trend 'A')"
    if params["seasonality"] != "N" and params["season_length"] < 2:
        problems["season_length"] = "a seasonal model needs a season_length of at least 2"
    return problems


def _season(default: int = 24) -> Parameter:
    return Parameter("int", default, 1, 10_000, description="Observations per season (24 for hourly data with a daily cycle)")


# What every lag-feature regressor takes besides its own settings.
_LAG_FEATURES = {
    "season_length": _season(),
    "lags": Parameter("int", 24, 1, 500, description="Recent lags used as features: 1..lags", search=(1, 48, False)),
    "seasonal_lags": Parameter("int", 7, 1, 52, description="Whole seasons back used as features: 2·m .. seasonal_lags·m (1 for none)"),
    "difference": Parameter("choice", "seasonal", choices=("seasonal", "first", "none"), description="Difference the target before learning, and undo it after", search=True),
    "scale": Parameter("bool", True, description="Standardise each series by its own mean and deviation, so one model fits series of any scale"),
    "calendar": Parameter("bool", True, description="Add calendar features that vary at the data's frequency (hour, day of week, month…)"),
    "seed": Parameter("int", 0, 0, 2**31 - 1, description="Random seed, for reproducible fits"),
}

_ORDERS = {
    "p": Parameter("int", 1, 0, 5, description="Autoregressive order", search=(0, 3, False)),
    "d": Parameter("int", 1, 0, 2, description="Differencing order", search=(0, 2, False)),
    "q": Parameter("int", 1, 0, 5, description="Moving-average order", search=(0, 3, False)),
    "include_drift": Parameter("bool", False, description="Add a linear drift term"),
}

CATALOGUE: dict[str, Algorithm] = {
    a.id: a
    for a in (
        Algorithm("naive", "Naive", "classical", "Repeats the last observed value.", _naive),
        Algorithm(
            "seasonal_naive",
            "Seasonal naive",
            "classical",
            "Repeats the value observed one season earlier; the baseline every model should beat.",
            _seasonal_naive,
            {"season_length": _season()},
        ),
        Algorithm("historic_average", "Historic average", "classical", "Forecasts the mean of the whole history.", _historic_average),
        Algorithm("arima", "ARIMA", "classical", "AutoRegressive Integrated Moving Average with explicit orders (p, d, q).", _arima, dict(_ORDERS)),
        Algorithm(
            "sarima",
            "SARIMA",
            "classical",
            "Seasonal ARIMA with explicit orders (p, d, q)(P, D, Q) and a season length.",
            _arima,
            {
                **_ORDERS,
                "P": Parameter("int", 1, 0, 2, description="Seasonal autoregressive order", search=(0, 1, False)),
                "D": Parameter("int", 1, 0, 1, description="Seasonal differencing order", search=(0, 1, False)),
                "Q": Parameter("int", 1, 0, 2, description="Seasonal moving-average order", search=(0, 1, False)),
                "season_length": _season(),
            },
        ),
        Algorithm(
            "auto_arima",
            "AutoARIMA",
            "classical",
            "Chooses the ARIMA orders by information criterion (stepwise search, Hyndman-Khandakar).",
            _auto_arima,
            {
                "season_length": _season(),
                "max_p": Parameter("int", 5, 0, 5),
                "max_q": Parameter("int", 5, 0, 5),
                # On by default, as R's auto.arima for long or highly seasonal series: the
                # exact likelihood made the search ~20x slower on 1,000 hourly points.
                "approximation": Parameter("bool", True, description="Approximate the likelihood while searching the orders (the chosen model is then fitted exactly)"),
            },
        ),
        Algorithm(
            "ets",
            "ETS",
            "classical",
            "Exponential smoothing state-space model with the error, trend and seasonality you choose.",
            _ets,
            {
                "error": Parameter("choice", "A", choices=("A", "M"), description="Additive or multiplicative errors", search=True),
                "trend": Parameter("choice", "A", choices=("N", "A"), description="No trend or additive trend", search=True),
                "seasonality": Parameter("choice", "A", choices=("N", "A", "M"), description="No, additive or multiplicative season", search=True),
                "damped": Parameter("bool", False, description="Damp the trend"),
                "season_length": _season(),
            },
            check=_ets_rules,
        ),
        Algorithm("auto_ets", "AutoETS", "classical", "Chooses the exponential smoothing model by information criterion.", _auto_ets, {"season_length": _season()}),
        Algorithm(
            "theta",
            "Theta",
            "classical",
            "The Theta method (Assimakopoulos & Nikolopoulos) on the deseasonalised series.",
            _theta,
            {"season_length": _season(), "decomposition": Parameter("choice", "multiplicative", choices=("multiplicative", "additive"), search=True)},
        ),
        Algorithm("auto_theta", "AutoTheta", "classical", "Chooses among Theta variants by in-sample error.", _auto_theta, {"season_length": _season()}),
        Algorithm(
            "mstl",
            "MSTL",
            "classical",
            "Multiple seasonal decomposition by Loess (e.g. daily and weekly cycles of hourly data); the remainder is forecast by AutoETS.",
            _mstl,
            {"season_length": _season(), "second_season": Parameter("int", 0, 0, 10_000, description="A second, longer cycle (168 for a week of hourly data); 0 for none")},
            check=_mstl_rules,
        ),
        Algorithm(
            "prophet",
            "Prophet",
            "classical",
            "Prophet's additive model: a piecewise-linear trend with changepoints plus daily, weekly and yearly seasonality, fitted per series.",
            _prophet,
            {
                "growth": Parameter("choice", "linear", choices=("linear", "flat"), description="Trend shape"),
                "seasonality_mode": Parameter("choice", "additive", choices=("additive", "multiplicative"), search=True),
                "changepoint_prior_scale": Parameter("float", 0.05, 0.001, 10.0, description="Trend flexibility", search=(0.001, 0.5, True)),
                "seasonality_prior_scale": Parameter("float", 10.0, 0.01, 100.0, description="Seasonality flexibility", search=(0.01, 10.0, True)),
                "uncertainty_samples": Parameter("int", 200, 10, 5000, description="Samples drawn for the prediction intervals"),
                "seed": Parameter("int", 0, 0, 2**31 - 1, description="Random seed of the interval samples"),
            },
            engine="prophet",
        ),
        Algorithm(
            "lightgbm",
            "LightGBM",
            "machine_learning",
            "Gradient-boosted trees on lag and calendar features, one model for every series, forecasting recursively.",
            _lightgbm,
            {
                **_LAG_FEATURES,
                "n_estimators": Parameter("int", 100, 10, 5000, description="Boosting rounds", search=(50, 500, True)),
                "learning_rate": Parameter("float", 0.1, 0.001, 1.0, search=(0.01, 0.3, True)),
                "num_leaves": Parameter("int", 31, 2, 1024, description="Leaves per tree", search=(8, 128, True)),
                "min_child_samples": Parameter("int", 20, 1, 10_000, description="Fewest rows in a leaf"),
            },
            engine="mlforecast",
        ),
        Algorithm(
            "xgboost",
            "XGBoost",
            "machine_learning",
            "Gradient-boosted trees (XGBoost) on lag and calendar features, one model for every series, forecasting recursively.",
            _xgboost,
            {
                **_LAG_FEATURES,
                "n_estimators": Parameter("int", 200, 10, 5000, description="Boosting rounds", search=(50, 500, True)),
                "learning_rate": Parameter("float", 0.1, 0.001, 1.0, search=(0.01, 0.3, True)),
                "max_depth": Parameter("int", 6, 1, 20, description="Depth of each tree", search=(2, 10, False)),
            },
            engine="mlforecast",
        ),
        Algorithm(
            "random_forest",
            "Random forest",
            "machine_learning",
            "A random forest on lag and calendar features, one model for every series, forecasting recursively.",
            _random_forest,
            {
                **_LAG_FEATURES,
                "n_estimators": Parameter("int", 200, 10, 2000, description="Trees", search=(50, 400, True)),
                "max_depth": Parameter("int", 0, 0, 100, description="Depth limit of each tree; 0 for none"),
                "min_samples_leaf": Parameter("int", 5, 1, 10_000, description="Fewest rows in a leaf", search=(1, 50, True)),
            },
            engine="mlforecast",
        ),
        Algorithm(
            "linear",
            "Linear (ridge)",
            "machine_learning",
            "Ridge regression on lag and calendar features, one model for every series, forecasting recursively.",
            _ridge,
            {**_LAG_FEATURES, "alpha": Parameter("float", 1.0, 0.0, 1e6, description="L2 penalty", search=(1e-3, 1e3, True))},
            engine="mlforecast",
        ),
        Algorithm(
            "auto",
            "Auto",
            "machine_learning",
            "Backtests a portfolio (seasonal naive, MSTL, LightGBM and XGBoost on lags) over the last horizons of the history and forecasts each series with the mean of the candidates that did best on it.",
            None,
            {
                "season_length": Parameter("int", 0, 0, 10_000, description="Observations per season; 0 infers it from the frequency"),
                "cv_windows": Parameter("int", 2, 1, 10, description="Backtest windows, of one horizon each, that rank the candidates"),
                "ensemble_size": Parameter("int", 3, 1, 5, description="How many of the best candidates are averaged for each series"),
            },
            engine="auto",
        ),
    )
}


def _preset(kind: str) -> dict[str, Parameter]:
    from vur.forecasting.architectures import PRESET_PARAMETERS

    specs = {
        name: Parameter(spec["type"], spec["default"], spec["min"], spec["max"], tuple(spec["choices"]) if spec["choices"] else None, spec["description"], spec.get("search"))
        for name, spec in PRESET_PARAMETERS[kind].items()
    }
    return {**specs, "seed": Parameter("int", 0, 0, 2**31 - 1, description="Random seed: the same seed trains the same network")}


for _kind, _name, _what in (
    ("lstm", "LSTM", "Long short-term memory layers"),
    ("gru", "GRU", "Gated recurrent unit layers"),
    ("mlp", "MLP", "Dense (multilayer perceptron) layers"),
):
    CATALOGUE[_kind] = Algorithm(
        _kind,
        _name,
        "deep_learning",
        f"{_what} reading a window of past values and predicting the whole horizon at once; one network for every series, each standardised. Keras on PyTorch, with early stopping.",
        None,
        _preset(_kind),
        engine="keras",
    )
CUSTOM_NETWORK = "custom_network"
CATALOGUE[CUSTOM_NETWORK] = Algorithm(CUSTOM_NETWORK, "Custom network", "deep_learning", "A network from a layer list (POST /api/v1/models/custom).", None, engine="keras", listed=False)


def get_algorithm(algorithm_id: str) -> Algorithm:
    try:
        return CATALOGUE[algorithm_id]
    except KeyError:
        raise UnknownAlgorithm(f"Unknown algorithm '{algorithm_id}'", {"algorithm": f"choose one of {sorted(a.id for a in CATALOGUE.values() if a.listed)}"}) from None


def catalogue_by_family() -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {"classical": [], "machine_learning": [], "deep_learning": []}
    for algorithm in CATALOGUE.values():
        if algorithm.listed:
            grouped[algorithm.family].append(algorithm.to_schema())
    return grouped
