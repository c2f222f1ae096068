"""Neural-network forecasting: the architecture rules, the catalogue presets, and
training and forecasting with small networks on synthetic series."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

import vur  # noqa: F401  (sets KERAS_BACKEND=torch before Keras is imported, or Keras looks for TensorFlow)
from vur.forecasting.architectures import PRESET_PARAMETERS, catalogue_architecture, catalogue_fit_settings, check_architecture
from vur.forecasting.networks import NetworkForecast, forecast_with_network, load_network, save_network
from vur.forecasting.schemas import CustomModelRequest

pytest.importorskip("keras")
# Keras' torch backend converts tensors the way numpy 2 deprecates, thousands of times a fit.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")

SEED_LAYERS = [
    {"type": "lstm", "units": 50, "return_sequences": True, "dropout": 0.2},
    {"type": "dense", "units": 25, "activation": "relu"},
    {"type": "dense", "units": 1, "activation": "linear"},
]
COMPILATION = {"optimizer": "adam", "loss": "mse", "metrics": ["mae", "mape"]}


def _training(epochs: int, validation_split: float = 0.2, patience: int = 5) -> dict:
    return {"epochs": epochs, "batch_size": 32, "validation_split": validation_split, "early_stopping": {"enabled": True, "patience": patience, "monitor": "val_loss"}}


def _hourly(uid: str, values: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"unique_id": uid, "ds": pd.date_range("2026-01-01", periods=values.size, freq="h"), "y": values})


def _sine_and_trend(points: int, level: float = 50, amplitude: float = 10, seed: int = 3) -> np.ndarray:
    hours = np.arange(points)
    return level + amplitude * np.sin(2 * np.pi * hours / 24) + 0.05 * hours + np.random.default_rng(seed).normal(0, 1, points)


# --- Architecture rules -------------------------------------------------------------


def test_the_seeds_own_example_is_accepted() -> None:
    assert check_architecture(SEED_LAYERS, horizon=24) == {}


def test_an_output_layer_that_fits_neither_way_is_rejected_in_words() -> None:
    layers = [{"type": "lstm", "units": 16}, {"type": "dense", "units": 7}]
    assert check_architecture(layers, horizon=24) == {"architecture.layers[1].units": "the output layer has 7 units but the horizon is 24: use 1 (recursive) or 24 (direct)"}
    assert check_architecture([{"type": "lstm", "units": 16}, {"type": "dense", "units": 24}], horizon=24) == {}


def test_the_last_layer_must_be_a_linear_dense_layer() -> None:
    problems = check_architecture([{"type": "dense", "units": 8}, {"type": "lstm", "units": 4}], horizon=12)
    assert "must be a dense layer" in problems["architecture.layers[1].type"]
    problems = check_architecture([{"type": "dense", "units": 1, "activation": "relu"}], horizon=12)
    assert "use linear" in problems["architecture.layers[0].activation"]


def test_return_sequences_misuse_is_named() -> None:
    problems = check_architecture([{"type": "dense", "units": 8, "return_sequences": True}, {"type": "dense", "units": 1}], horizon=6)
    assert problems == {"architecture.layers[0].return_sequences": "return_sequences applies only to lstm and gru layers"}
    # A second recurrent layer needs the first one's whole sequence, dropout in between or not.
    layers = [{"type": "lstm", "units": 8}, {"type": "dropout", "dropout": 0.1}, {"type": "gru", "units": 8}, {"type": "dense", "units": 1}]
    problems = check_architecture(layers, horizon=6)
    assert list(problems) == ["architecture.layers[0].return_sequences"]
    assert "layers[2] is a gru layer" in problems["architecture.layers[0].return_sequences"]
    layers[0]["return_sequences"] = True
    assert check_architecture(layers, horizon=6) == {}


def test_fields_a_layer_type_needs_or_refuses() -> None:
    layers = [{"type": "dropout", "dropout": 0.2}, {"type": "dense"}, {"type": "dropout", "units": 3}, {"type": "dense", "units": 1, "dropout": 0.3}]
    assert set(check_architecture(layers, horizon=4)) == {
        "architecture.layers[0].type",  # dropout first
        "architecture.layers[1].units",  # dense without units
        "architecture.layers[2].dropout",  # dropout without its rate
        "architecture.layers[2].units",  # ... and with units
        "architecture.layers[3].dropout",  # dense with dropout
    }
    assert "learn nothing" in check_architecture([{"type": "dropout", "dropout": 0.5}], horizon=1)["architecture.layers"]


def test_a_dense_only_network_is_accepted() -> None:
    assert check_architecture([{"type": "dense", "units": 32, "activation": "relu"}, {"type": "dropout", "dropout": 0.1}, {"type": "dense", "units": 12}], horizon=12) == {}


@pytest.mark.parametrize("kind", ["lstm", "gru", "mlp"])
def test_presets_build_valid_direct_networks(kind: str) -> None:
    params = {name: spec["default"] for name, spec in PRESET_PARAMETERS[kind].items()} | {"layers": 3, "dropout": 0.2}
    layers = catalogue_architecture(kind, params, horizon=48)
    assert check_architecture(layers, horizon=48) == {}
    assert layers[-1] == {"type": "dense", "units": 48, "activation": "linear"}
    assert sum(layer["type"] == ("dense" if kind == "mlp" else kind) for layer in layers) == 3 + (kind == "mlp")
    compilation, training = catalogue_fit_settings(params)
    assert compilation["learning_rate"] == params["learning_rate"] and training["epochs"] == params["epochs"]


def test_the_request_schema_takes_the_seed_body_and_nothing_unknown() -> None:
    example = CustomModelRequest.model_config["json_schema_extra"]["examples"][0]
    body = CustomModelRequest.model_validate_json(json.dumps(example))
    assert check_architecture([layer.model_dump() for layer in body.architecture.layers], body.horizon) == {}
    with pytest.raises(ValidationError) as error:
        CustomModelRequest.model_validate({**example, "horizon": "24", "architecture": {"layers": [{"type": "dense", "units": 1, "size": 3}]}})
    assert {tuple(e["loc"]) for e in error.value.errors()} == {("horizon",), ("architecture", "layers", 0, "size")}


# --- Training and forecasting ----------------------------------------------------------


@pytest.fixture(scope="module")
def two_scales() -> pd.DataFrame:
    """Two short series a thousand times apart in scale."""
    return pd.concat([_hourly("small", _sine_and_trend(200, level=5, amplitude=1)), _hourly("large", _sine_and_trend(200, level=10_000, amplitude=1_000, seed=4))], ignore_index=True)


def _seed_network(data: pd.DataFrame) -> NetworkForecast:
    # The seed's architecture, shrunk: recursive (1 output unit), Flatten before the dense layers.
    layers = [dict(SEED_LAYERS[0], units=8), dict(SEED_LAYERS[1], units=4), SEED_LAYERS[2]]
    return forecast_with_network(data, 6, "h", [80, 95], layers, COMPILATION, _training(epochs=3), input_size=None, seed=7)


@pytest.fixture(scope="module")
def recursive(two_scales: pd.DataFrame) -> NetworkForecast:
    return _seed_network(two_scales)


def test_a_direct_network_beats_seasonal_naive_on_sine_and_trend() -> None:
    horizon = 24
    values = _sine_and_trend(1000)
    history, actual = _hourly("s", values[:-horizon]), values[-horizon:]
    epochs = []
    layers = [{"type": "dense", "units": 64, "activation": "relu"}, {"type": "dense", "units": horizon}]
    result = forecast_with_network(history, horizon, "h", [50, 80, 95], layers, COMPILATION, _training(epochs=40), input_size=48, seed=1, on_epoch=lambda *args: epochs.append(args))

    frame = result.frame
    assert list(frame.columns) == ["unique_id", "ds", "mean", "lo-50", "hi-50", "lo-80", "hi-80", "lo-95", "hi-95"]
    assert list(frame["ds"]) == list(pd.date_range(history["ds"].iloc[-1] + pd.Timedelta(hours=1), periods=horizon, freq="h"))
    error = np.mean(np.abs(frame["mean"].to_numpy() - actual))
    seasonal_naive = np.mean(np.abs(np.tile(values[-horizon - 24 : -horizon], horizon // 24) - actual))
    assert error < seasonal_naive and error < 0.1 * values.std(), (error, seasonal_naive)
    widths = [frame[f"hi-{level}"] - frame[f"lo-{level}"] for level in (50, 80, 95)]
    assert (frame["lo-95"] <= frame["mean"]).all() and (frame["mean"] <= frame["hi-95"]).all()
    assert ((widths[0] <= widths[1]) & (widths[1] <= widths[2])).all() and (widths[0] > 0).all()

    assert [epoch for epoch, _, _ in epochs] == list(range(1, result.epochs_run + 1))
    assert all(total == 40 for _, total, _ in epochs)
    assert set(epochs[-1][2]) == {"loss", "val_loss", "val_mae", "val_mape"}
    assert result.history["val_mae"] == [logs["val_mae"] for _, _, logs in epochs]


def test_recursive_forecasts_come_back_in_each_series_units(recursive: NetworkForecast, two_scales: pd.DataFrame) -> None:
    frame = recursive.frame
    assert recursive.input_size == 12  # automatic: 2 x horizon
    assert frame.groupby("unique_id").size().to_dict() == {"small": 6, "large": 6}
    for uid, (low, high) in {"small": (0, 15), "large": (5_000, 15_000)}.items():
        part = frame[frame["unique_id"] == uid]
        assert part["mean"].between(low, high).all(), part
        assert (part["lo-95"] <= part["lo-80"]).all() and (part["lo-80"] <= part["mean"]).all() and (part["mean"] <= part["hi-80"]).all()
        assert (part["hi-80"] <= part["hi-95"]).all()
    mean, std = recursive.scalers["large"]
    assert mean == pytest.approx(two_scales.loc[two_scales["unique_id"] == "large", "y"].mean())


def test_the_same_seed_gives_the_same_forecast(recursive: NetworkForecast, two_scales: pd.DataFrame) -> None:
    again = _seed_network(two_scales)
    pd.testing.assert_frame_equal(again.frame, recursive.frame, check_exact=True)
    assert again.history == recursive.history


def test_a_saved_network_loads_safely_and_predicts_the_same(recursive: NetworkForecast, tmp_path: Path) -> None:
    path = tmp_path / "network.keras"
    save_network(recursive.model, path)
    loaded = load_network(path)
    windows = np.random.default_rng(0).normal(size=(5, recursive.input_size, 1)).astype("float32")
    np.testing.assert_array_equal(loaded.predict(windows, verbose=0), recursive.model.predict(windows, verbose=0))


def test_series_too_short_for_the_window_are_refused() -> None:
    data = pd.concat([_hourly("long", _sine_and_trend(300)), _hourly("short", _sine_and_trend(40))], ignore_index=True)
    layers = [{"type": "dense", "units": 8}, {"type": "dense", "units": 24}]
    with pytest.raises(ValueError, match=r"1 of 2 series are too short .* at least 81 points .* 'short' has 40"):
        forecast_with_network(data, 24, "h", [80], layers, COMPILATION, _training(epochs=1), input_size=48)


@pytest.mark.parametrize("layer", ["lstm", "gru"])
def test_fused_cpu_recurrent_kernels_match_keras_own_loop(layer: str) -> None:
    from keras.src import backend

    from vur.forecasting.networks import build_network

    name = layer
    build_network([{"type": layer, "units": 4}, {"type": "dense", "units": 2}], 6, COMPILATION)  # installs the fused path
    fused = getattr(backend, name)
    assert getattr(fused, "__wrapped__", None) is not None, "the fused path was not installed"
    model = build_network([{"type": layer, "units": 4}, {"type": "dense", "units": 2}], 6, COMPILATION)
    windows = np.random.default_rng(1).normal(size=(3, 6, 1)).astype("float32")
    fast = model.predict(windows, verbose=0)
    setattr(backend, name, fused.__wrapped__)
    try:
        slow = model.predict(windows, verbose=0)
    finally:
        setattr(backend, name, fused)
    np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-6)
