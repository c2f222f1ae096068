"""Neural-network forecasters: the custom architectures of seed 4.3 and the catalogue's
LSTM, GRU and MLP presets, trained with Keras 3 on the torch backend.

One global network learns from every series at once. Each series is standardised with
its own mean and standard deviation; the network reads `input_size` standardised values
and predicts either the whole horizon at once (direct: an output layer of `horizon`
units) or the next value only, fed back `horizon` times (recursive: one output unit).

The layer-list rules and the presets are architectures.py. Keras, torch and pandas are
imported inside the functions; `import vur` sets KERAS_BACKEND=torch before any of them.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from vur.forecasting.architectures import AUTO_INPUT_RANGE, LOSSES, MIN_WINDOWS, OPTIMIZERS, RECURRENT, check_architecture, with_layer_defaults

if TYPE_CHECKING:
    import keras
    import pandas as pd

# Bound on the training arrays (windows x values per window, float32: 200 MB); when the
# data gives more, the most recent windows of each series are kept.
MAX_WINDOW_VALUES = 50_000_000
# Interval residuals come from the latest windows of each series, this many at most.
INTERVAL_WINDOWS_PER_SERIES = 100
INTERVAL_WINDOWS = 5_000
PREDICT_BATCH = 1024
# torch on 2 threads of a busy 2-core machine trained 10-20x slower than on 1 (measured).
TORCH_THREADS = 1

EpochCallback = Callable[[int, int, dict[str, float]], None]


# --- Building and saving ------------------------------------------------------------------


def _keras() -> Any:
    """Keras, with its LSTM and GRU layers on torch's fused CPU kernels."""
    import keras

    _fuse_recurrent_kernels_on_cpu()
    return keras


def _fuse_recurrent_kernels_on_cpu() -> None:
    """Keras' torch backend runs LSTM and GRU layers through torch's fused kernels on CUDA
    only; on CPU it loops over the time steps in Python, 6x slower for LSTM and 2x for GRU
    here (see keras-team/keras#20902). Those fused kernels give the same results on CPU, so route
    the calls they cover (tanh and sigmoid activations, no mask, forward order) to them
    and leave everything else to Keras. The saved models are plain Keras layers either way.

    This reaches into Keras' private backend module: if its functions are gone, nothing
    changes (training is only slower), and a test compares both paths."""
    from keras.src import activations, backend

    already_routed = getattr(backend.lstm, "__wrapped__", None) is not None
    if backend.backend() != "torch" or already_routed:
        return
    rnn = importlib.import_module("keras.src.backend.torch.rnn")
    if not all(hasattr(rnn, name) for name in ("_cudnn_lstm", "_cudnn_gru", "convert_to_tensor")):
        return
    keras_lstm, keras_gru = backend.lstm, backend.gru

    def fusable(activation: Any, recurrent_activation: Any, mask: Any, bias: Any, go_backwards: bool, unroll: bool) -> bool:
        return activation is activations.tanh and recurrent_activation is activations.sigmoid and mask is None and bias is not None and not (go_backwards or unroll)

    def lstm(
        inputs, initial_state_h, initial_state_c, mask, kernel, recurrent_kernel, bias, activation, recurrent_activation, return_sequences=False, go_backwards=False, unroll=False, batch_first=True
    ):
        if not (batch_first and fusable(activation, recurrent_activation, mask, bias, go_backwards, unroll)):
            return keras_lstm(inputs, initial_state_h, initial_state_c, mask, kernel, recurrent_kernel, bias, activation, recurrent_activation, return_sequences, go_backwards, unroll, batch_first)
        kernel = rnn.convert_to_tensor(kernel)
        inputs, state_h, state_c = (rnn.convert_to_tensor(t).to(kernel.dtype) for t in (inputs, initial_state_h, initial_state_c))
        recurrent_kernel, bias = rnn.convert_to_tensor(recurrent_kernel), rnn.convert_to_tensor(bias)
        return rnn._cudnn_lstm(inputs, state_h, state_c, kernel, recurrent_kernel, bias, return_sequences=return_sequences, device=inputs.device)

    def gru(inputs, initial_state, mask, kernel, recurrent_kernel, bias, activation, recurrent_activation, return_sequences=False, go_backwards=False, unroll=False, reset_after=True):
        if not (reset_after and fusable(activation, recurrent_activation, mask, bias, go_backwards, unroll)):
            return keras_gru(inputs, initial_state, mask, kernel, recurrent_kernel, bias, activation, recurrent_activation, return_sequences, go_backwards, unroll, reset_after)
        kernel = rnn.convert_to_tensor(kernel)
        inputs, state = (rnn.convert_to_tensor(t).to(kernel.dtype) for t in (inputs, initial_state))
        recurrent_kernel, bias = rnn.convert_to_tensor(recurrent_kernel), rnn.convert_to_tensor(bias)
        return rnn._cudnn_gru(inputs, state, kernel, recurrent_kernel, bias, return_sequences=return_sequences, device=inputs.device)

    lstm.__wrapped__, gru.__wrapped__ = keras_lstm, keras_gru  # type: ignore[attr-defined]  (also marks them as routed)
    backend.lstm, backend.gru = lstm, gru


def build_network(layers: list[dict[str, Any]], input_size: int, compilation: dict[str, Any]) -> keras.Model:
    """The compiled Keras model of a checked layer list, reading windows of shape (input_size, 1)."""
    keras = _keras()

    layers = with_layer_defaults(layers)
    last_recurrent = max((index for index, layer in enumerate(layers) if layer["type"] in RECURRENT), default=-1)
    inputs = keras.Input(shape=(input_size, 1), name="window")
    x, sequence = inputs, True
    for index, layer in enumerate(layers):
        if layer["type"] == "dense" and sequence and index > last_recurrent:
            # Dense layers after the last recurrent layer work on one vector per window. When
            # that layer returns sequences (as in the seed's own example) or there is none
            # (an MLP), flatten the steps first; dense layers before a recurrent one act
            # on each step and keep the sequence.
            x, sequence = keras.layers.Flatten()(x), False
        x = _keras_layer(keras, layer)(x)
        if layer["type"] in RECURRENT:
            sequence = layer["return_sequences"]
    model = keras.Model(inputs, x)
    optimizer = getattr(keras.optimizers, OPTIMIZERS[compilation.get("optimizer", "adam")])
    learning_rate = compilation.get("learning_rate")
    model.compile(optimizer=optimizer() if learning_rate is None else optimizer(learning_rate=learning_rate), loss=LOSSES[compilation.get("loss", "mse")])
    return model


def _keras_layer(keras: Any, layer: dict[str, Any]) -> Any:
    if layer["type"] == "dropout":
        return keras.layers.Dropout(layer["dropout"])
    if layer["type"] == "dense":
        return keras.layers.Dense(layer["units"], activation=layer["activation"])
    recurrent = keras.layers.LSTM if layer["type"] == "lstm" else keras.layers.GRU
    return recurrent(layer["units"], activation=layer["activation"], return_sequences=layer["return_sequences"], dropout=layer["dropout"])


def save_network(model: keras.Model, path: Path) -> None:
    """Keras' native format (a zip of JSON config and weights; path ends in .keras)."""
    model.save(path)


def load_network(path: Path) -> keras.Model:
    """safe_mode refuses Lambda layers and any other code in the file; none is ever built here."""
    keras = _keras()
    return keras.saving.load_model(path, safe_mode=True)


# --- Training and forecasting ---------------------------------------------------------------


@dataclass(frozen=True)
class _Series:
    uid: Any
    values: np.ndarray  # standardised, float32
    mean: float
    std: float
    last: Any  # the last timestamp


@dataclass(frozen=True)
class NetworkForecast:
    frame: pd.DataFrame  # unique_id, ds, mean, lo-L and hi-L for each level
    history: dict[str, list[float]]  # per epoch: loss, val_loss, val_<metric>
    epochs_run: int
    input_size: int
    scalers: dict[str, tuple[float, float]]  # series id -> (mean, std) of the standardisation
    model: Any  # the fitted keras.Model, for save_network


def forecast_with_network(
    data: pd.DataFrame,
    horizon: int,
    freq: str,
    levels: list[int],
    layers: list[dict[str, Any]],
    compilation: dict[str, Any],
    training: dict[str, Any],
    input_size: int | None = None,
    seed: int = 0,
    on_epoch: EpochCallback | None = None,
) -> NetworkForecast:
    """Train one network on every series of `data` (unique_id, ds, y; sorted) and forecast
    `horizon` steps after each series' last timestamp.

    Training: sliding windows of `input_size` standardised values, each followed by its
    `horizon` next values (direct) or the next one (recursive). With `validation_split`,
    the latest share of each series' windows is held out: it gives val_loss (for early
    stopping, with the best epoch's weights restored) and the requested metrics, computed
    after each epoch in the series' own units (val_mae, val_rmse...; one step ahead for a
    recursive network). `on_epoch(epoch, epochs, logs)` follows each epoch, counting from 1.

    Intervals, symmetric: the network forecasts the last windows of each series' history
    (at most 100 per series, 5,000 in all); the absolute errors at each horizon step,
    pooled over series in standardised units, give that step's empirical quantile for each
    level, and the interval is mean +/- that quantile times the series' standard deviation.
    Higher levels are never narrower. With validation_split > 0 these windows overlap the
    held-out ones; otherwise the errors are in-sample and the intervals optimistic.

    Deterministic for a given seed. Keras or torch failures propagate with their message.
    """
    problems = check_architecture(layers, horizon)
    if problems:
        raise ValueError("invalid architecture: " + "; ".join(f"{field}: {problem}" for field, problem in problems.items()))
    series = _standardised(data)
    if input_size is None:
        input_size = _automatic_input_size(horizon, min(len(s.values) for s in series))
    _require_length(series, input_size, horizon)
    with _torch_threads(TORCH_THREADS):
        keras = _keras()
        keras.utils.set_random_seed(seed)
        outputs = layers[-1]["units"]
        recursive = outputs < horizon
        model = build_network(layers, input_size, compilation)
        train, held, held_scale = _training_windows(series, input_size, outputs, training.get("validation_split", 0))
        epochs = training["epochs"]
        history: dict[str, list[float]] = {}
        callbacks = [_epoch_reporter(keras, epochs, held, held_scale, input_size, compilation.get("metrics", []), history, on_epoch)]
        stopping = training.get("early_stopping") or {}
        if stopping.get("enabled"):
            callbacks.append(keras.callbacks.EarlyStopping(monitor=stopping["monitor"], patience=stopping["patience"], restore_best_weights=True))
        model.fit(
            train[:, :input_size, None],
            train[:, input_size:],
            batch_size=training["batch_size"],
            epochs=epochs,
            validation_data=(held[:, :input_size, None], held[:, input_size:]) if len(held) else None,
            shuffle=True,
            callbacks=callbacks,
            verbose=0,
        )
        last_windows = np.stack([s.values[-input_size:] for s in series])
        means = _predict_horizon(model, last_windows, horizon, recursive)
        spreads = _error_quantiles(model, series, input_size, horizon, recursive, levels)
        return NetworkForecast(
            frame=_forecast_frame(series, means, spreads, freq),
            history=history,
            epochs_run=len(history.get("loss", [])),
            input_size=input_size,
            scalers={str(s.uid): (s.mean, s.std) for s in series},
            model=model,
        )


@contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """torch's thread count for the duration, restored afterwards."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _standardised(data: pd.DataFrame) -> list[_Series]:
    series = []
    for uid, part in data.groupby("unique_id", sort=False):
        values = part["y"].to_numpy(np.float64)
        mean, std = float(values.mean()), float(values.std())
        std = std if std > 0 and math.isfinite(std) else 1.0  # a flat series: centre it only
        series.append(_Series(uid, ((values - mean) / std).astype(np.float32), mean, std, part["ds"].iloc[-1]))
    if not series:
        raise ValueError("no data to train on")
    return series


def _automatic_input_size(horizon: int, shortest: int) -> int:
    low, high = AUTO_INPUT_RANGE
    fits = shortest - horizon - MIN_WINDOWS + 1  # the longest window the shortest series allows
    return max(2, min(max(2 * horizon, low), high, fits))


def _require_length(series: list[_Series], input_size: int, horizon: int) -> None:
    needed = input_size + horizon + MIN_WINDOWS - 1
    short = [s for s in series if len(s.values) < needed]
    if short:
        raise ValueError(
            f"{len(short)} of {len(series)} series are too short for this network: each needs at least {needed} points "
            f"(input_size {input_size} + horizon {horizon} + {MIN_WINDOWS - 1}, for {MIN_WINDOWS} windows to learn from), "
            f"e.g. {short[0].uid!r} has {len(short[0].values)}; use a shorter input_size or horizon"
        )


def _training_windows(series: list[_Series], input_size: int, outputs: int, validation_split: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows of input_size + outputs values: those to train on, the latest
    `validation_split` of each series held out, and the held windows' (mean, std)."""
    width = input_size + outputs
    keep = max(MIN_WINDOWS, MAX_WINDOW_VALUES // (width * len(series)))
    train, held, held_scale = [], [], []
    for s in series:
        windows = sliding_window_view(s.values, width)[-keep:]
        cut = len(windows) - (math.ceil(len(windows) * validation_split) if validation_split else 0)
        train.append(windows[:cut])
        held.append(windows[cut:])
        held_scale.append(np.tile([s.mean, s.std], (len(windows) - cut, 1)))
    return np.concatenate(train), np.concatenate(held), np.concatenate(held_scale)


def _epoch_reporter(
    keras: Any,
    epochs: int,
    held: np.ndarray,
    held_scale: np.ndarray,
    input_size: int,
    metrics: list[str],
    history: dict[str, list[float]],
    on_epoch: EpochCallback | None,
) -> Any:
    """A callback that adds the metrics in original units to each epoch's logs, records
    them all in `history` and calls `on_epoch`."""

    class EpochReporter(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            logs = logs if logs is not None else {}
            if len(held) and metrics:
                predicted = _predict(self.model, held[:, :input_size])
                logs.update({f"val_{name}": value for name, value in _errors(held[:, input_size:], predicted, held_scale, metrics).items()})
            for name, value in logs.items():
                history.setdefault(name, []).append(float(value))
            if on_epoch is not None:
                on_epoch(epoch + 1, epochs, {name: float(value) for name, value in logs.items()})

    return EpochReporter()


def _errors(actual: np.ndarray, predicted: np.ndarray, scale: np.ndarray, metrics: list[str]) -> dict[str, float]:
    """The metrics of standardised windows, back in each window's series units."""
    mean, std = scale[:, :1], scale[:, 1:]
    actual, predicted = actual * std + mean, predicted * std + mean
    error = actual - predicted
    nonzero = actual != 0
    values = {
        "mae": float(np.mean(np.abs(error))),
        "mse": float(np.mean(error**2)),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mape": float(np.mean(np.abs(error[nonzero] / actual[nonzero])) * 100) if nonzero.any() else float("nan"),
    }
    return {name: values[name] for name in metrics}


def _predict(model: Any, windows: np.ndarray) -> np.ndarray:
    return model.predict(windows[:, :, None], batch_size=PREDICT_BATCH, verbose=0)


def _predict_horizon(model: Any, windows: np.ndarray, horizon: int, recursive: bool) -> np.ndarray:
    """(windows, horizon) standardised forecasts; a recursive network reads its own
    forecasts as the latest observations."""
    if not recursive:
        return _predict(model, windows)
    windows = windows.copy()
    steps = np.empty((len(windows), horizon), dtype=np.float32)
    for step in range(horizon):
        steps[:, step] = _predict(model, windows)[:, 0]
        windows = np.concatenate([windows[:, 1:], steps[:, step : step + 1]], axis=1)
    return steps


def forecast_windows(model: Any, windows: np.ndarray, horizon: int) -> np.ndarray:
    """(windows, horizon) standardised forecasts from standardised input windows: a
    network with fewer outputs than `horizon` steps forward recursively."""
    return _predict_horizon(model, windows, horizon, recursive=model.output_shape[-1] < horizon)[:, :horizon]


def _error_quantiles(model: Any, series: list[_Series], input_size: int, horizon: int, recursive: bool, levels: list[int]) -> dict[int, np.ndarray]:
    """Per level, the empirical quantile of the absolute standardised error at each horizon
    step, over the latest windows of every series."""
    if not levels:
        return {}
    per_series = max(1, min(INTERVAL_WINDOWS_PER_SERIES, INTERVAL_WINDOWS // len(series)))
    windows = np.concatenate([sliding_window_view(s.values, input_size + horizon)[-per_series:] for s in series])
    errors = np.abs(windows[:, input_size:] - _predict_horizon(model, windows[:, :input_size], horizon, recursive))
    return {level: np.quantile(errors, level / 100, axis=0) for level in levels}


def _forecast_frame(series: list[_Series], means: np.ndarray, spreads: dict[int, np.ndarray], freq: str) -> pd.DataFrame:
    import pandas as pd

    offset = pd.tseries.frequencies.to_offset(freq)
    parts = []
    for s, standardised in zip(series, means.astype(np.float64), strict=True):
        mean = standardised * s.std + s.mean
        part = {"unique_id": s.uid, "ds": pd.date_range(s.last + offset, periods=len(mean), freq=offset), "mean": mean}
        for level, spread in spreads.items():
            part[f"lo-{level}"] = mean - spread * s.std
            part[f"hi-{level}"] = mean + spread * s.std
        parts.append(pd.DataFrame(part))
    return pd.concat(parts, ignore_index=True)
