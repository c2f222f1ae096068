"""Neural networks over HTTP: the catalogue's presets and seed 4.3's custom layer lists,
checked before anything runs, trained epoch by epoch through the job."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path

import httpx
import pytest

from tests.conftest import Account, assert_envelope, hourly_csv, register
from tests.core.test_smoke_slice import wait_for_training
from tests.forecasting.test_training import upload_csv

pytestmark = pytest.mark.anyio

# Seed 4.3's body, with fewer epochs so that the test stays quick.
SEED_BODY = {
    "architecture": {
        "layers": [
            {"type": "lstm", "units": 16, "return_sequences": True, "dropout": 0.2},
            {"type": "dense", "units": 8, "activation": "relu"},
            {"type": "dense", "units": 1, "activation": "linear"},
        ]
    },
    "compilation": {"optimizer": "adam", "loss": "mse", "metrics": ["mae", "mape"]},
    "training": {"epochs": 3, "batch_size": 32, "validation_split": 0.2, "early_stopping": {"enabled": True, "patience": 10, "monitor": "val_loss"}},
    "horizon": 12,
    "input_size": 24,
    "validation": {"method": "holdout"},
}


@pytest.fixture
async def dataset_id(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> str:
    return await upload_csv(client, account, hourly_csv(tmp_path / "two.csv", hours=24 * 10, series=["a", "b"]).read_bytes())


async def test_the_seed_network_trains_epoch_by_epoch(client: httpx.AsyncClient, account: Account, dataset_id: str) -> None:
    configured = await client.post("/api/v1/models/custom", headers=account.headers, json={"dataset_id": dataset_id, **SEED_BODY})
    assert configured.status_code == 201, configured.text
    model = configured.json()
    assert model["status"] == "configured" and model["algorithm"] == "custom_network"
    assert [layer["type"] for layer in model["hyperparameters"]["layers"]] == ["lstm", "dense", "dense"]
    started = await client.post(f"/api/v1/models/{model['model_id']}/train", headers=account.headers)
    assert started.status_code == 202, started.text
    status = await wait_for_training(client, account, model["model_id"])
    assert status["status"] == "completed", status
    assert status["total_epochs"] == 3 and status["current_epoch"] == 3
    assert [line.split(" - ")[0] for line in status["logs"] if line.startswith("Epoch")] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    forecast = (await client.get(f"/api/v1/models/{model['model_id']}/forecast", headers=account.headers)).json()
    assert sorted({p["series_id"] for p in forecast["predictions"]}) == ["a", "b"] and len(forecast["predictions"]) == 24
    # The series move between 90 and 112: a network returning standardised values would not.
    assert all(80 < p["value"] < 125 for p in forecast["predictions"])
    results = (await client.get(f"/api/v1/models/{model['model_id']}/results", headers=account.headers)).json()
    assert results["details"]["epochs_run"] == 3 and {"keras", "torch"} <= set(results["versions"])


@pytest.mark.parametrize("kind", ["lstm", "gru", "mlp"])
async def test_catalogue_networks_train(client: httpx.AsyncClient, account: Account, dataset_id: str, kind: str) -> None:
    body = {"dataset_id": dataset_id, "algorithm": kind, "hyperparameters": {"epochs": 2, "units": 8, "input_size": 24}, "horizon": 12, "validation": {"method": "holdout"}}
    train = await client.post("/api/v1/models/train", headers=account.headers, json=body)
    assert train.status_code == 202, train.text
    status = await wait_for_training(client, account, train.json()["model_id"])
    assert status["status"] == "completed", status
    assert status["total_epochs"] == 2


def _with(path: list, value: object) -> dict:
    body = copy.deepcopy(SEED_BODY)
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_with(["architecture", "layers", 2, "units"], 7), "architecture.layers[2].units"),
        (_with(["architecture", "layers", 0, "type"], "transformer"), "architecture.layers.0.type"),
        (_with(["architecture", "layers", 0, "units"], "16"), "architecture.layers.0.units"),
        (_with(["architecture", "layers", 0, "colour"], "red"), "architecture.layers.0.colour"),
        (_with(["architecture", "layers"], []), "architecture.layers"),
        (_with(["architecture", "layers"], [{"type": "dropout", "dropout": 0.2}]), "architecture.layers"),
        (_with(["training", "epochs"], 0), "training.epochs"),
        (_with(["compilation", "optimizer"], "lbfgs"), "compilation.optimizer"),
        (_with(["horizon"], "12"), "horizon"),
    ],
)
async def test_networks_that_cannot_run_are_422_before_anything_runs(client: httpx.AsyncClient, account: Account, dataset_id: str, body: dict, field: str) -> None:
    response = await client.post("/api/v1/models/custom", headers=account.headers, json={"dataset_id": dataset_id, **body})
    details = assert_envelope(response, 422)["details"]
    assert any(key.startswith(field) for key in details), details
    assert (await client.get("/api/v1/models", headers=account.headers)).json() == []


async def test_custom_networks_only_through_their_endpoint(client: httpx.AsyncClient, account: Account, dataset_id: str) -> None:
    refused = await client.post("/api/v1/models/configure", headers=account.headers, json={"dataset_id": dataset_id, "algorithm": "custom_network"})
    assert "algorithm" in assert_envelope(refused, 422)["details"]
    catalogue = (await client.get("/api/v1/models/algorithms", headers=account.headers)).json()
    assert [a["id"] for a in catalogue["deep_learning"]] == ["lstm", "gru", "mlp"]
    raw = await client.post("/api/v1/models/custom", headers={**account.headers, "Content-Type": "application/json"}, content=b'{"dataset_id": ')
    assert_envelope(raw, 400)
    stranger = await register(client)
    assert_envelope(await client.post("/api/v1/models/custom", headers=stranger.headers, json={"dataset_id": dataset_id, **SEED_BODY}), 404)


async def test_a_training_network_can_be_cancelled(client: httpx.AsyncClient, account: Account, dataset_id: str) -> None:
    body = {"dataset_id": dataset_id, "algorithm": "mlp", "hyperparameters": {"epochs": 1000, "patience": 1000, "input_size": 24}, "horizon": 12, "validation": {"method": "holdout"}}
    model_id = (await client.post("/api/v1/models/train", headers=account.headers, json=body)).json()["model_id"]
    for _ in range(600):  # until the validation fold's network is on its epochs
        status = (await client.get(f"/api/v1/models/{model_id}/training/status", headers=account.headers)).json()
        if status["progress"] > 10:
            break
        await asyncio.sleep(0.1)
    assert status["progress"] > 10, status
    cancelled = await client.post(f"/api/v1/models/{model_id}/training/cancel", headers=account.headers)
    assert cancelled.status_code == 200, cancelled.text
    final = await wait_for_training(client, account, model_id)
    assert final["status"] == "cancelled" and final["progress"] < 40
    model = (await client.get(f"/api/v1/models/{model_id}", headers=account.headers)).json()
    assert model["status"] == "configured"
    assert_envelope(await client.post(f"/api/v1/models/{model_id}/training/cancel", headers=account.headers), 409)
