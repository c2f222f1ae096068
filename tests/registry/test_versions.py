"""Model versions, saving, and bundles: export a version, load it elsewhere, and refuse
bundles that were altered, signed by another instance, or are not bundles at all."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import Account, assert_envelope, hourly_csv, register
from tests.core.test_smoke_slice import wait_for_training
from tests.forecasting.test_training import upload_csv
from vur.registry import bundles
from vur.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
async def trained(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> str:
    dataset = await upload_csv(client, account, hourly_csv(tmp_path / "h.csv", hours=24 * 8).read_bytes())
    body = {"dataset_id": dataset, "algorithm": "seasonal_naive", "hyperparameters": {"season_length": 24}, "horizon": 6, "validation": {"n_splits": 1}}
    model_id = (await client.post("/api/v1/models/train", headers=account.headers, json=body)).json()["model_id"]
    assert (await wait_for_training(client, account, model_id))["status"] == "completed"
    return model_id


async def test_each_training_is_a_version_and_one_can_be_saved(client: httpx.AsyncClient, account: Account, trained: str) -> None:
    await client.post(f"/api/v1/models/{trained}/train", headers=account.headers)
    assert (await wait_for_training(client, account, trained))["status"] == "completed"
    versions = (await client.get(f"/api/v1/models/{trained}/versions", headers=account.headers)).json()
    assert [v["number"] for v in versions] == [2, 1] and not any(v["saved"] for v in versions)
    saved = await client.post(f"/api/v1/models/{trained}/save", headers=account.headers, json={"version": 1, "note": "baseline"})
    assert saved.status_code == 200, saved.text
    assert saved.json()["number"] == 1 and saved.json()["saved"] and saved.json()["note"] == "baseline"
    latest = await client.post(f"/api/v1/models/{trained}/save", headers=account.headers, json={})
    assert latest.json()["number"] == 2
    bodiless = await client.post(f"/api/v1/models/{trained}/save", headers=account.headers)  # no body: the latest too
    assert bodiless.status_code == 200 and bodiless.json()["number"] == 2, bodiless.text
    assert_envelope(await client.post(f"/api/v1/models/{trained}/save", headers=account.headers, json={"version": 9}), 404)
    assert_envelope(await client.post(f"/api/v1/models/{trained}/save", headers=account.headers, json={"version": "1"}), 422)


async def test_export_then_load_elsewhere_gives_the_same_model(client: httpx.AsyncClient, account: Account, trained: str) -> None:
    exported = await client.get(f"/api/v1/models/{trained}/export", headers=account.headers)
    assert exported.status_code == 200 and exported.headers["content-type"] == "application/zip"
    assert "attachment" in exported.headers["content-disposition"]
    other = await register(client)
    loaded = await client.post("/api/v1/models/load", headers=other.headers, files={"file": ("m.zip", io.BytesIO(exported.content), "application/zip")}, data={"name": "imported"})
    assert loaded.status_code == 201, loaded.text
    model = loaded.json()
    assert model["status"] == "trained" and model["name"] == "imported" and model["dataset_id"] is None
    original = (await client.get(f"/api/v1/models/{trained}/forecast", headers=account.headers)).json()
    copy = (await client.get(f"/api/v1/models/{model['id']}/forecast", headers=other.headers)).json()
    assert copy["predictions"] == original["predictions"]
    metrics = (await client.get(f"/api/v1/models/{trained}", headers=account.headers)).json()["metrics"]
    assert (await client.get(f"/api/v1/models/{model['id']}/results", headers=other.headers)).json()["metrics"] == metrics
    assert [v["number"] for v in (await client.get(f"/api/v1/models/{model['id']}/versions", headers=other.headers)).json()] == [1]


def _rewritten(bundle: bytes, change: dict[str, bytes]) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(bundle))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for info in source.infolist():
            archive.writestr(info.filename, change.get(info.filename, source.read(info.filename)))
        for name, data in change.items():
            if name not in source.namelist():
                archive.writestr(name, data)
    return out.getvalue()


async def test_altered_foreign_and_broken_bundles_are_refused(client: httpx.AsyncClient, account: Account, trained: str) -> None:
    bundle = (await client.get(f"/api/v1/models/{trained}/export", headers=account.headers)).content
    forecast = zipfile.ZipFile(io.BytesIO(bundle)).read("files/forecast.json")
    manifest = zipfile.ZipFile(io.BytesIO(bundle)).read("manifest.json")
    cases = {
        "altered file": (_rewritten(bundle, {"files/forecast.json": forecast.replace(b'"value":', b'"value": 1e9, "x":', 1)}), "files"),
        "altered manifest": (_rewritten(bundle, {"manifest.json": manifest.replace(b"seasonal_naive", b"evil_naive")}), "signature"),
        "foreign signer": (bundles.write_bundle({"kind": "forecaster", "name": "x", "algorithm": "naive", "hyperparameters": {}, "config": {}, "metrics": {}, "version": 1}, {"forecast.json": forecast}, "another-instance-key"), "signature"),
        "smuggled file": (_rewritten(bundle, {"files/extra.pkl": b"cos\nsystem\n(S'echo pwned'\ntR."}), "files"),
        "non-ASCII signature": (_rewritten(bundle, {"signature": b"\xff\xfe" * 10}), "signature"),
        "not a zip": (b"PK\x03\x04 but not really a zip", "file"),
        "empty zip": (_rewritten(b"PK\x05\x06" + b"\x00" * 18, {}), "file"),
    }
    before = (await client.get("/api/v1/models", headers=account.headers)).json()
    for label, (content, field) in cases.items():
        response = await client.post("/api/v1/models/load", headers=account.headers, files={"file": ("m.zip", io.BytesIO(content), "application/zip")})
        details = assert_envelope(response, 422)["details"]
        assert field in details, (label, details)
    assert (await client.get("/api/v1/models", headers=account.headers)).json() == before
    missing = await client.post("/api/v1/models/load", headers=account.headers, data={"name": "x"})
    assert_envelope(missing, 422)


async def test_versions_export_and_save_are_scoped_and_need_a_training(client: httpx.AsyncClient, account: Account, trained: str, tmp_path: Path) -> None:
    stranger = await register(client)
    for path in ("versions", "export"):
        assert_envelope(await client.get(f"/api/v1/models/{trained}/{path}", headers=stranger.headers), 404)
    assert_envelope(await client.post(f"/api/v1/models/{trained}/save", headers=stranger.headers, json={}), 404)
    dataset = await upload_csv(client, account, hourly_csv(tmp_path / "h2.csv", hours=24 * 8).read_bytes())
    configured = (await client.post("/api/v1/models/configure", headers=account.headers, json={"dataset_id": dataset, "algorithm": "naive", "horizon": 6})).json()
    assert_envelope(await client.get(f"/api/v1/models/{configured['model_id']}/export", headers=account.headers), 404)
    assert (await client.get(f"/api/v1/models/{configured['model_id']}/versions", headers=account.headers)).json() == []


async def test_a_signed_bundle_of_another_format_is_refused(client: httpx.AsyncClient, account: Account, trained: str, settings: Settings) -> None:
    bundle = (await client.get(f"/api/v1/models/{trained}/export", headers=account.headers)).content
    archive = zipfile.ZipFile(io.BytesIO(bundle))
    files = {name.removeprefix("files/"): archive.read(name) for name in archive.namelist() if name.startswith("files/")}
    description = {"format": "vur-model-bundle/99", "kind": "forecaster", "name": "x", "algorithm": "naive", "hyperparameters": {}, "config": {}, "metrics": {}, "version": 1}
    future = bundles.write_bundle(description, files, settings.resolved_secret_key())
    response = await client.post("/api/v1/models/load", headers=account.headers, files={"file": ("m.zip", io.BytesIO(future), "application/zip")})
    assert "format" in assert_envelope(response, 422)["details"]


async def test_numbers_past_what_the_database_stores_are_refused(client: httpx.AsyncClient, account: Account, trained: str) -> None:
    huge = 10**30
    assert_envelope(await client.get(f"/api/v1/models/{trained}/export", headers=account.headers, params={"version": huge}), 422)
    assert_envelope(await client.post(f"/api/v1/models/{trained}/save", headers=account.headers, json={"version": huge}), 422)
    assert_envelope(await client.post(f"/api/v1/models/{trained}/predict", headers=account.headers, json={"horizon": 2, "version": huge}), 422)
    assert_envelope(await client.post("/api/v1/predictions/predict", headers=account.headers, json={"model_id": trained, "horizon": 2, "version": huge}), 422)
    assert_envelope(await client.get("/api/v1/models", headers=account.headers, params={"offset": huge}), 422)
    # The largest each database stores is still a number like any other.
    assert_envelope(await client.get(f"/api/v1/models/{trained}/export", headers=account.headers, params={"version": 2**31 - 1}), 404)
