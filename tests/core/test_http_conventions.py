"""The conventions every endpoint shares: the error envelope, request ids, body limits,
CORS, Prometheus metrics and the health endpoints."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Account, assert_envelope, hourly_csv
from vur.app import create_app
from vur.core.errors import error_response
from vur.settings import Settings

pytestmark = pytest.mark.anyio

ALLOWED_ORIGIN = "http://localhost:5173"

# --- the error envelope ---------------------------------------------------------------------


async def test_unknown_route_is_404_envelope(client: httpx.AsyncClient) -> None:
    for url in ("/no/such/route", "/api/v1/nothing-here", "/api/v1/models/train/extra/segments"):
        body = assert_envelope(await client.get(url), 404)
        assert body["details"] == {}


async def test_wrong_method_is_405_envelope(client: httpx.AsyncClient, account: Account) -> None:
    for method, url in (("DELETE", "/api/v1/auth/me"), ("GET", "/api/v1/auth/login"), ("PUT", "/health"), ("DELETE", "/api/v1/workspace/members")):
        response = await client.request(method, url, headers=account.headers)
        assert_envelope(response, 405)
        assert "Allow" in response.headers, (method, url)


async def test_malformed_json_is_400_envelope(client: httpx.AsyncClient, account: Account) -> None:
    for url, headers in (("/api/v1/auth/register", {}), ("/api/v1/models/train", account.headers), ("/api/v1/auth/login", {})):
        response = await client.post(url, content=b'{"email": "broken', headers={**headers, "Content-Type": "application/json"})
        details = assert_envelope(response, 400)["details"]
        assert list(details) == ["body"], (url, details)  # the body is named, not a character offset


async def test_missing_and_wrongly_typed_fields_are_named_in_422(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.post("/api/v1/auth/register", json={"email": 12, "password": ["x"]})
    details = assert_envelope(response, 422)["details"]
    assert {"email", "password", "name"} <= set(details), details
    assert all(isinstance(v, str) and v for v in details.values())

    response = await client.post("/api/v1/models/train", headers=account.headers, json={"dataset_id": "not-a-uuid", "horizon": "soon", "levels": [150]})
    details = assert_envelope(response, 422)["details"]
    assert {"dataset_id", "algorithm", "horizon"} <= set(details), details
    assert any(key.startswith("levels") for key in details), details

    # Query parameters are named too.
    response = await client.get("/api/v1/models", headers=account.headers, params={"limit": 0, "offset": -1})
    details = assert_envelope(response, 422)["details"]
    assert {"limit", "offset"} <= set(details), details


async def test_body_of_the_wrong_shape_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/register", json=["a", "list"])
    assert_envelope(response, 422)


async def test_body_over_the_limit_is_413_envelope(client: httpx.AsyncClient, settings: Settings) -> None:
    assert settings.max_body_bytes == 64 * 1024
    big = {"email": "big@example.com", "password": "correct-horse-battery", "name": "x" * (settings.max_body_bytes + 1)}
    response = await client.post("/api/v1/auth/register", json=big)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/json"), response.text
    assert_envelope(response, 413)


async def test_chunked_body_over_the_limit_is_413_envelope(client: httpx.AsyncClient, settings: Settings) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email": "big@example.com", "password": "correct-horse-battery", "name": "'
        for _ in range(settings.max_body_bytes // 1024 + 2):
            yield b"x" * 1024
        yield b'"}'

    response = await client.post("/api/v1/auth/register", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert_envelope(response, 413)


async def test_body_just_under_the_limit_is_accepted(client: httpx.AsyncClient, settings: Settings) -> None:
    # The limit is on bytes, not a guess: a body just under it is read and validated.
    body = {"email": "under@example.com", "password": "correct-horse-battery", "name": "x" * (settings.max_body_bytes - 200)}
    response = await client.post("/api/v1/auth/register", json=body)
    assert_envelope(response, 422)  # name is too long for the schema: validated, not refused


async def test_upload_has_its_own_larger_limit(client: httpx.AsyncClient, account: Account, settings: Settings, tmp_path: Path) -> None:
    # An upload over the JSON body limit but under max_upload_bytes goes through.
    path = hourly_csv(tmp_path / "big.csv", hours=24 * 120)
    assert settings.max_body_bytes < path.stat().st_size < settings.max_upload_bytes
    with path.open("rb") as handle:
        response = await client.post("/api/v1/datasets/upload", headers=account.headers, files={"file": ("big.csv", handle, "text/csv")})
    assert response.status_code == 201, response.text


async def test_upload_over_the_upload_limit_is_413_envelope(client: httpx.AsyncClient, account: Account, settings: Settings) -> None:
    row = b"2026-01-01T00:00:00,1.0\n"
    payload = b"date,value\n" + row * ((settings.max_upload_bytes + 2 * 1_048_576) // len(row))
    assert len(payload) > settings.max_upload_bytes + 1_048_576
    response = await client.post("/api/v1/datasets/upload", headers=account.headers, files={"file": ("huge.csv", payload, "text/csv")})
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/json"), response.text
    assert_envelope(response, 413)


def _chunked_multipart(filename: str, header: bytes, row: bytes, rows: int) -> tuple[AsyncIterator[bytes], dict[str, str]]:
    """A multipart file upload sent in chunks, without a Content-Length."""
    boundary = uuid.uuid4().hex

    async def chunks() -> AsyncIterator[bytes]:
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\nContent-Type: text/csv\r\n\r\n'.encode() + header
        for _ in range(rows // 1000):
            yield row * 1000
        yield f"\r\n--{boundary}--\r\n".encode()

    return chunks(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


async def test_chunked_upload_over_the_upload_limit_is_413_envelope(client: httpx.AsyncClient, account: Account, settings: Settings) -> None:
    row = b"2026-01-01T00:00:00,1.0\n"
    content, headers = _chunked_multipart("huge.csv", b"date,value\n", row, (settings.max_upload_bytes + 2 * 1_048_576) // len(row))
    response = await client.post("/api/v1/datasets/upload", headers={**account.headers, **headers, "X-Request-ID": "chunked-upload-413"}, content=content)
    assert "content-length" not in response.request.headers
    body = assert_envelope(response, 413)
    assert body["request_id"] == "chunked-upload-413"
    assert body["details"] == {"max_bytes": settings.max_upload_bytes + 1_048_576}


async def test_chunked_upload_between_the_limits_is_accepted(client: httpx.AsyncClient, account: Account, settings: Settings) -> None:
    # Over the JSON limit, under the upload one, with no Content-Length to go by: counted and let through.
    row = b"2026-01-01T00:00:00,1.0\n"
    rows = (settings.max_body_bytes * 4) // len(row) // 1000 * 1000
    content, headers = _chunked_multipart("chunked.csv", b"date,value\n", row, rows)
    response = await client.post("/api/v1/datasets/upload", headers={**account.headers, **headers}, content=content)
    assert settings.max_body_bytes < rows * len(row) < settings.max_upload_bytes
    assert response.status_code == 201, response.text


async def test_json_route_over_the_body_limit_is_refused_by_content_length(client: httpx.AsyncClient, account: Account, settings: Settings) -> None:
    # A declared length over the limit is refused before authentication or the route run.
    payload = b'{"horizon": 1, "pad": "' + b"x" * settings.max_body_bytes + b'"}'
    for headers in ({**account.headers, "X-Request-ID": "json-413"}, {"X-Request-ID": "json-413"}):
        response = await client.post(f"/api/v1/models/{uuid.uuid4()}/predict", headers={**headers, "Content-Type": "application/json"}, content=payload)
        assert response.request.headers["content-length"] == str(len(payload))
        body = assert_envelope(response, 413)
        assert body["request_id"] == "json-413"
        assert body["details"] == {"max_bytes": settings.max_body_bytes}


async def test_upload_route_with_a_path_parameter_gets_the_upload_limit(client: httpx.AsyncClient, account: Account, settings: Settings) -> None:
    # /machines/{machine_id}/train is an upload route: a body over the JSON limit reaches it
    # (and is answered 404 for the unknown machine), one over the upload limit does not.
    files = {"file": ("data.csv", b"a,b\n" + b"1,2\n" * (settings.max_body_bytes // 4 + 10), "text/csv")}
    url = f"/api/v1/machines/{uuid.uuid4()}/train"
    assert_envelope(await client.post(url, headers=account.headers, files=files, data={"target_column": "b"}), 404)
    files = {"file": ("data.csv", b"a,b\n" + b"1,2\n" * ((settings.max_upload_bytes + 2 * 1_048_576) // 4), "text/csv")}
    assert_envelope(await client.post(url, headers=account.headers, files=files, data={"target_column": "b"}), 413)


async def test_every_error_status_is_an_envelope(client: httpx.AsyncClient, account: Account, other_account: Account) -> None:
    """One sweep over the failure modes (auth, role, not found, conflict, validation)."""
    calls = [
        (401, client.get("/api/v1/models")),
        (401, client.get("/api/v1/models", headers={"Authorization": "Bearer nope"})),
        (403, client.post("/api/v1/workspace/members", headers=(await _viewer(client, account)).headers, json={"email": "a@example.com", "name": "A", "password": "long-enough"})),
        (404, client.get(f"/api/v1/models/{uuid.uuid4()}", headers=account.headers)),
        (404, client.get(f"/api/v1/jobs/{uuid.uuid4()}", headers=account.headers)),
        (409, client.post("/api/v1/auth/register", json={"email": other_account.email, "password": "correct-horse-battery", "name": "X"})),
        (422, client.get("/api/v1/models/not-a-uuid", headers=account.headers)),
    ]
    for status, call in calls:
        response = await call
        assert response.headers["content-type"].startswith("application/json")
        assert_envelope(response, status)


async def _viewer(client: httpx.AsyncClient, admin: Account) -> Account:
    from tests.conftest import add_member

    return await add_member(client, admin, "viewer")


async def test_unhandled_exception_is_500_envelope(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internal detail")

    @app.get("/boom-async")
    async def boom_async() -> None:
        raise RuntimeError("secret internal detail")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        for url in ("/boom", "/boom-async"):
            response = await http.get(url)
            body = assert_envelope(response, 500)
            assert body["error"] == "Internal server error"
            assert body["request_id"]
            assert "secret internal detail" not in response.text

            response = await http.get(url, headers={"X-Request-ID": "trace-500-abc"})
            body = assert_envelope(response, 500)
            assert body["request_id"] == "trace-500-abc"


# --- request ids --------------------------------------------------------------------------------


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient, account: Account) -> None:
    seen = set()
    for response in (
        await client.get("/health"),
        await client.get("/metrics"),
        await client.get("/openapi.json"),
        await client.get("/api/v1/auth/me", headers=account.headers),
        await client.get("/api/v1/auth/me"),
        await client.get("/nowhere"),
    ):
        request_id = response.headers.get("X-Request-ID")
        assert request_id and re.fullmatch(r"[A-Za-z0-9._:\-]{1,128}", request_id), response.headers
        seen.add(request_id)
    assert len(seen) == 6  # a new one per request


@pytest.mark.parametrize("incoming", ["abc-123", "trace.id:42_x", "A" * 128, str(uuid.uuid4())])
async def test_sane_request_id_is_echoed(client: httpx.AsyncClient, incoming: str) -> None:
    ok = await client.get("/health", headers={"X-Request-ID": incoming})
    assert ok.headers["X-Request-ID"] == incoming
    error = await client.get("/api/v1/auth/me", headers={"X-Request-ID": incoming})
    assert assert_envelope(error, 401)["request_id"] == incoming


@pytest.mark.parametrize("incoming", ["A" * 129, "has space", "semi;colon", "<script>", "quote\"d", "slash/y", "ünïcode", ""])
async def test_insane_request_id_is_replaced(client: httpx.AsyncClient, incoming: str) -> None:
    error = await client.get("/api/v1/auth/me", headers={"X-Request-ID": incoming.encode("utf-8")})
    replaced = error.headers["X-Request-ID"]
    assert replaced != incoming
    assert re.fullmatch(r"[0-9a-f]{32}", replaced), replaced
    assert assert_envelope(error, 401)["request_id"] == replaced


async def test_only_one_request_id_header(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "single-id"})
    assert response.headers.get_list("X-Request-ID") == ["single-id"]


# --- CORS ------------------------------------------------------------------------------------------


async def test_cors_preflight_from_an_allowed_origin(client: httpx.AsyncClient, settings: Settings) -> None:
    assert ALLOWED_ORIGIN in settings.cors_origins
    response = await client.options(
        "/api/v1/auth/login",
        headers={"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,authorization,x-request-id"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert response.headers.get("Access-Control-Allow-Credentials") == "true"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed_headers = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed_headers and "x-request-id" in allowed_headers
    assert "X-Request-ID" in response.headers


async def test_cors_actual_request_exposes_request_id(client: httpx.AsyncClient, account: Account) -> None:
    for response in (
        await client.get("/api/v1/models", headers={**account.headers, "Origin": ALLOWED_ORIGIN}),
        await client.get("/api/v1/models", headers={"Origin": ALLOWED_ORIGIN}),  # errors too
    ):
        assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
        exposed = {h.strip().lower() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
        assert {"x-request-id", "x-total-count"} <= exposed


async def test_cors_from_a_foreign_origin_is_not_allowed(client: httpx.AsyncClient) -> None:
    response = await client.options("/api/v1/auth/login", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert response.headers.get("Access-Control-Allow-Origin") != "https://evil.example"
    assert response.status_code >= 400
    assert_envelope(response, response.status_code)
    simple = await client.get("/health", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in simple.headers


# --- metrics ------------------------------------------------------------------------------------------


def metric_samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    samples = []
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(1)))
            samples.append((labels, float(match.group(2))))
    return samples


async def test_metrics_is_prometheus_text_labelled_by_route_template(client: httpx.AsyncClient, account: Account) -> None:
    missing_model = uuid.uuid4()
    for _ in range(2):
        await client.get(f"/api/v1/models/{missing_model}", headers=account.headers)
    await client.get(f"/api/v1/datasets/{uuid.uuid4()}", headers=account.headers)
    await client.get(f"/unknown/{missing_model}")

    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# TYPE vur_http_requests_total counter" in text
    assert "# TYPE vur_http_request_duration_seconds histogram" in text

    requests = metric_samples(text, "vur_http_requests_total")
    routes = {labels["route"] for labels, _ in requests}
    assert str(missing_model) not in text  # no raw ids anywhere, matched or not
    assert all("{" not in r or re.search(r"\{\w+\}", r) for r in routes)
    model_404 = [v for labels, v in requests if labels == {"method": "GET", "route": "/api/v1/models/{model_id}", "status": "404"}]
    assert model_404 and model_404[0] >= 2
    assert any(labels["route"] == "/api/v1/datasets/{dataset_id}" for labels, _ in requests)
    # An unmatched path is one label, not one per path.
    assert all(labels["route"] in routes for labels, _ in requests)
    assert not any(labels["route"].startswith("/unknown/") for labels, _ in requests)

    latency = metric_samples(text, "vur_http_request_duration_seconds_count")
    assert any(labels == {"method": "GET", "route": "/api/v1/models/{model_id}"} for labels, _ in latency)


async def test_metrics_reports_jobs_by_status(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    path = hourly_csv(tmp_path / "m.csv", hours=24 * 5)
    with path.open("rb") as handle:
        upload = await client.post("/api/v1/datasets/upload", headers=account.headers, files={"file": ("m.csv", handle, "text/csv")})
    assert upload.status_code == 201, upload.text
    train = await client.post(
        "/api/v1/models/train",
        headers=account.headers,
        json={"dataset_id": upload.json()["dataset_id"], "algorithm": "seasonal_naive", "hyperparameters": {"season_length": 24}},
    )
    assert train.status_code == 202, train.text

    text = (await client.get("/metrics")).text
    assert "# TYPE vur_jobs gauge" in text
    jobs = {labels["status"]: value for labels, value in metric_samples(text, "vur_jobs")}
    assert {"queued", "running", "succeeded", "failed", "cancelled"} <= set(jobs), jobs
    assert sum(jobs.values()) >= 1


# --- health -----------------------------------------------------------------------------------------------


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy"}


async def test_health_detailed(client: httpx.AsyncClient, settings: Settings) -> None:
    response = await client.get("/health/detailed")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"status", "service", "version", "database", "storage", "jobs"}
    assert body["status"] == "healthy"
    assert body["service"] == "VUR"
    assert isinstance(body["version"], str) and body["version"]
    assert body["database"]["status"] == "healthy"
    assert body["database"]["backend"] in ("sqlite", "postgresql")
    assert body["storage"] == {"status": "healthy", "backend": "local"}
    jobs = body["jobs"]
    assert jobs["status"] == "healthy"
    assert jobs["runner"] == settings.job_runner
    assert jobs["worker"]["alive"] is True
    assert set(jobs["counts"]) >= {"queued", "running", "succeeded", "failed", "cancelled"}
    assert all(isinstance(n, int) and n >= 0 for n in jobs["counts"].values())


async def test_health_needs_no_authentication(client: httpx.AsyncClient) -> None:
    for url in ("/health", "/health/detailed", "/metrics"):
        assert (await client.get(url)).status_code == 200


async def test_an_envelope_is_json_whatever_its_message_and_details_hold() -> None:
    """The last line of defence: a detail that is no JSON type (a UUID) and a message that
    UTF-8 cannot encode (a lone surrogate echoed from input) still make an envelope."""
    some_id = uuid.uuid4()
    response = error_response(400, "Unknown status '\udc83'", {"id": some_id})
    assert json.loads(response.body) == {"error": "Unknown status '\udc83'", "details": {"id": str(some_id)}, "request_id": response.headers["X-Request-ID"]}
