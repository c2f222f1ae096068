"""No route lets a workspace reach another workspace's rows by id.

The routes are discovered from the app itself: every /api/v1 route with a `{..._id}` path
parameter is called by a user of workspace B with an id that exists in workspace A, and
must answer the 404 envelope (not 403, which would confirm the id exists, and never 2xx).
A new `{x_id}` route fails `test_every_id_route_is_known` until this file learns how to
make an `x` in a workspace.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from tests.conftest import Account, add_member, assert_envelope, hourly_csv, register, wait_for_job
from tests.forge.instruction_data import Item, instruction_dataset
from tests.webhooks.receiver import Receiver
from vur.app import create_app
from vur.core.db import Database, utcnow
from vur.jobs import service as jobs
from vur.monitoring.alerts import evaluate
from vur.predictions.schemas import DIRECT_BATCH
from vur.settings import Settings

pytestmark = pytest.mark.anyio

ID_PARAM = re.compile(r"\{(\w+_id)(?::\w+)?\}")
# Path parameters that are not ids, and a valid value for each.
OTHER_PARAM = re.compile(r"\{(\w+)\}")
OTHER_VALUES = {"step": "upload"}


@dataclass(frozen=True)
class IdRoute:
    method: str
    path: str
    params: tuple[str, ...]
    body: dict | None  # the documented example request body, when the route takes one

    def url(self, ids: dict[str, str]) -> str:
        return OTHER_PARAM.sub(lambda m: OTHER_VALUES[m.group(1)], ID_PARAM.sub(lambda m: ids[m.group(1)], self.path))

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


def _resolve(schema: dict, spec: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _example_body(operation: dict, spec: dict) -> dict | None:
    """The request body a route documents, so that the call gets past validation to the
    id lookup. Every JSON body in VUR carries an example (see test_openapi)."""
    request_body = operation.get("requestBody")
    if not request_body:
        return None
    media = request_body.get("content", {}).get("application/json")
    if media is None:
        return None
    if "example" in media:
        return media["example"]
    if media.get("examples"):
        return next(iter(media["examples"].values()))["value"]
    schema = media.get("schema", {})
    for candidate in [schema, *schema.get("anyOf", [])]:
        resolved = _resolve(candidate, spec)
        if resolved.get("examples"):
            return resolved["examples"][0]
    return {} if not request_body.get("required") else None


def discover_id_routes(settings: Settings) -> list[IdRoute]:
    app = create_app(settings)
    spec = app.openapi()
    routes = []
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute) or not context.path.startswith("/api/v1/"):
            continue
        params = tuple(ID_PARAM.findall(context.path))
        if not params:
            continue
        for method in sorted(context.methods or ()):
            if method == "HEAD":
                continue
            operation = spec["paths"].get(context.path, {}).get(method.lower(), {})
            routes.append(IdRoute(method, context.path, params, _example_body(operation, spec)))
    # Reads first, deletions last: a broken delete must not hide what the other routes do.
    return sorted(routes, key=lambda r: (r.method != "GET", r.method == "DELETE", r.path))


@dataclass
class WorkspaceA:
    owner: Account
    ids: dict[str, str]


async def _make_dataset(client: httpx.AsyncClient, owner: Account, tmp_path: Path, made: dict[str, str]) -> str:
    path = hourly_csv(tmp_path / f"{uuid.uuid4().hex}.csv", hours=24 * 5)
    with path.open("rb") as handle:
        upload = await client.post("/api/v1/datasets/upload", headers=owner.headers, files={"file": ("a.csv", handle, "text/csv")})
    assert upload.status_code == 201, upload.text
    return upload.json()["dataset_id"]


async def _train(client: httpx.AsyncClient, owner: Account, tmp_path: Path, made: dict[str, str]) -> dict[str, str]:
    if "dataset_id" not in made:
        made["dataset_id"] = await _make_dataset(client, owner, tmp_path, made)
    train = await client.post(
        "/api/v1/models/train",
        headers=owner.headers,
        json={"dataset_id": made["dataset_id"], "algorithm": "seasonal_naive", "hyperparameters": {"season_length": 24}, "horizon": 24},
    )
    assert train.status_code == 202, train.text
    return train.json()


async def _model(client: httpx.AsyncClient, owner: Account, tmp_path: Path, made: dict[str, str]) -> str:
    trained = await _train(client, owner, tmp_path, made)
    made.setdefault("job_id", trained["job_id"])
    return trained["model_id"]


async def _job(client: httpx.AsyncClient, owner: Account, tmp_path: Path, made: dict[str, str]) -> str:
    trained = await _train(client, owner, tmp_path, made)
    made.setdefault("model_id", trained["model_id"])
    return trained["job_id"]


async def _user(client: httpx.AsyncClient, owner: Account, tmp_path: Path, made: dict[str, str]) -> str:
    return (await add_member(client, owner, "member")).user_id


async def _trained_model(client: httpx.AsyncClient, owner: Account, tmp_path: Path, made: dict[str, str]) -> str:
    if "model_id" not in made:
        made["model_id"] = await _model(client, owner, tmp_path, made)
    await succeeded(client, owner, made["job_id"])
    return made["model_id"]


async def _prediction(client: httpx.AsyncClient, owner: Account, tmp_path: Path, made: dict[str, str]) -> str:
    model_id = await _trained_model(client, owner, tmp_path, made)
    response = await client.post(f"/api/v1/models/{model_id}/predict", headers=owner.headers, json={"horizon": 2})
    assert response.status_code == 200, response.text
    return response.json()["prediction_id"]


async def _batch(client: httpx.AsyncClient, owner: Account, tmp_path: Path, made: dict[str, str]) -> str:
    model_id = await _trained_model(client, owner, tmp_path, made)
    body = {"model_id": model_id, "requests": [{"horizon": 1}] * (DIRECT_BATCH + 1)}
    batch_id = (await client.post("/api/v1/predictions/batch", headers=owner.headers, json=body)).json()["job_id"]
    await succeeded(client, owner, batch_id)
    return batch_id


async def _database(client: httpx.AsyncClient, owner: Account, tmp_path: Path, made: dict[str, str]) -> str:
    body = {"name": "readings", "url": "sqlite:///isolation.db", "table_name": "readings", "timestamp_column": "at", "value_column": "value"}
    response = await client.post("/api/v1/monitoring/databases", headers=owner.headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def _stream(client: httpx.AsyncClient, owner: Account, tmp_path: Path, made: dict[str, str]) -> str:
    model_id = await _trained_model(client, owner, tmp_path, made)
    made.setdefault("database_id", await _database(client, owner, tmp_path, made))
    body = {"model_id": model_id, "database_id": made["database_id"], "interval_seconds": 86_400}
    stream_id = (await client.post("/api/v1/monitoring/predictions/start", headers=owner.headers, json=body)).json()["id"]
    # Its one run of the day (the source file does not exist: a recorded failure) happens
    # now, so that reads of the stream answer the same before and after the intruder.
    while (await client.get(f"/api/v1/monitoring/predictions/{stream_id}", headers=owner.headers)).json()["last_run_at"] is None:
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    return stream_id


async def _pipeline(client: httpx.AsyncClient, owner: Account, tmp_path: Path, made: dict[str, str]) -> str:
    response = await client.post("/api/v1/pipelines", headers=owner.headers, json={"name": "isolation"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def _rule(client: httpx.AsyncClient, owner: Account, tmp_path: Path, made: dict[str, str]) -> str:
    model_id = await _trained_model(client, owner, tmp_path, made)
    response = await client.post("/api/v1/monitoring/alert-rules", headers=owner.headers, json={"model_id": model_id, "threshold": 1})
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def _alert(client: httpx.AsyncClient, owner: Account, tmp_path: Path, made: dict[str, str]) -> str:
    """Alerts are raised by the evaluator: a job of the workspace fails, then it runs."""
    database = FACTORY_CONTEXT["database"]
    with database.session() as session:
        job_id = jobs.enqueue(session, "tests.count", {"steps": 1, "delay": 0.01, "fail_at": 1}, workspace_id=uuid.UUID(owner.workspace_id)).id
    while (await client.get(f"/api/v1/jobs/{job_id}", headers=owner.headers)).json()["status"] != "failed":
        await asyncio.sleep(0.1)
    with database.session() as session:
        evaluate(session, utcnow())
    return (await client.get("/api/v1/monitoring/alerts", headers=owner.headers)).json()[0]["id"]


async def _pinged_webhook(client: httpx.AsyncClient, owner: Account) -> tuple[str, str]:
    """A webhook and its ping, delivered to a receiver that is gone afterwards. The webhook is
    then paused, so that nothing more is queued for it and its reads stay the same."""
    with Receiver() as receiver:
        created = await client.post("/api/v1/webhooks", headers=owner.headers, json={"url": receiver.url, "events": ["training.completed"]})
        assert created.status_code == 201, created.text
        webhook_id = created.json()["id"]
        delivery_id = (await client.post(f"/api/v1/webhooks/{webhook_id}/test", headers=owner.headers)).json()["id"]
        while (await client.get(f"/api/v1/webhooks/deliveries/{delivery_id}", headers=owner.headers)).json()["status"] != "delivered":
            await asyncio.sleep(0.1)
    paused = await client.put(f"/api/v1/webhooks/{webhook_id}", headers=owner.headers, json={"active": False})
    assert paused.status_code == 200, paused.text
    return webhook_id, delivery_id


async def _machine(client: httpx.AsyncClient, owner: Account, tmp_path: Path, made: dict[str, str]) -> str:
    """Trained twice, so that its ranking, history and comparison all answer the owner."""
    machine_id = (await client.post("/api/v1/machines", headers=owner.headers, json={"machine_name": "isolation"})).json()["id"]
    rows = "\n".join(["a,b,y", *(f"{i % 7},{i % 5},{2 * (i % 7) - (i % 5)}" for i in range(60))]).encode()
    for _ in range(2):
        files = {"file": ("process.csv", rows, "text/csv")}
        response = await client.post(f"/api/v1/machines/{machine_id}/train", headers=owner.headers, files=files, data={"target_column": "y"})
        assert response.status_code == 202, response.text
        await succeeded(client, owner, response.json()["job_id"])
    return machine_id


async def _webhook(client: httpx.AsyncClient, owner: Account, tmp_path: Path, made: dict[str, str]) -> str:
    webhook_id, delivery_id = await _pinged_webhook(client, owner)
    made.setdefault("delivery_id", delivery_id)
    return webhook_id


async def _delivery(client: httpx.AsyncClient, owner: Account, tmp_path: Path, made: dict[str, str]) -> str:
    webhook_id, delivery_id = await _pinged_webhook(client, owner)
    made.setdefault("webhook_id", webhook_id)
    return delivery_id


async def _forge_domain(client: httpx.AsyncClient, owner: Account, tmp_path: Path, made: dict[str, str]) -> str:
    response = await client.post("/api/v1/domains", headers=owner.headers, json={"name": "isolation", "slug": f"iso-{uuid.uuid4().hex[:8]}"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def _forge_document(client: httpx.AsyncClient, owner: Account, tmp_path: Path, made: dict[str, str]) -> str:
    if "domain_id" not in made:
        made["domain_id"] = await _forge_domain(client, owner, tmp_path, made)
    text = "Primeiro parágrafo do documento.\n\nSegundo parágrafo do documento.\n".encode()
    files = {"file": ("doc.txt", text, "text/plain")}
    response = await client.post("/api/v1/documents/upload", headers=owner.headers, params={"domain_id": made["domain_id"]}, files=files)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def _forge_segment(client: httpx.AsyncClient, owner: Account, tmp_path: Path, made: dict[str, str]) -> str:
    """Processes the document, and waits for it, so that its reads stay the same afterwards."""
    if "document_id" not in made:
        made["document_id"] = await _forge_document(client, owner, tmp_path, made)
    document_url = f"/api/v1/documents/{made['document_id']}"
    accepted = await client.post(f"{document_url}/process", headers=owner.headers, json={"segment_type": "paragraph"})
    assert accepted.status_code == 202, accepted.text
    while (await client.get(document_url, headers=owner.headers)).json()["status"] == "processing":
        await asyncio.sleep(0.1)
    listed = await client.get("/api/v1/segments", headers=owner.headers, params={"document_id": made["document_id"]})
    return listed.json()[0]["id"]


async def _forge_template(client: httpx.AsyncClient, owner: Account, tmp_path: Path, made: dict[str, str]) -> str:
    if "domain_id" not in made:
        made["domain_id"] = await _forge_domain(client, owner, tmp_path, made)
    body = {"domain_id": made["domain_id"], "name": "isolation", "system_prompt": "Assistente.", "user_prompt_template": "Contexto: {content}"}
    response = await client.post("/api/v1/templates", headers=owner.headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def _forge_export(client: httpx.AsyncClient, owner: Account, tmp_path: Path, made: dict[str, str]) -> str:
    """An instruction dataset written to the database (generation is not needed), exported."""
    dataset_id = instruction_dataset(FACTORY_CONTEXT["database"], owner.workspace_id, [Item()])
    response = await client.post(f"/api/v1/datasets/{dataset_id}/export", headers=owner.headers, json={})
    assert response.status_code == 200, response.text
    return response.json()["id"]


async def _forge_item(client: httpx.AsyncClient, owner: Account, tmp_path: Path, made: dict[str, str]) -> str:
    """An instruction item, generated (by the tests' provider server) from the segment."""
    if "segment_id" not in made:
        made["segment_id"] = await _forge_segment(client, owner, tmp_path, made)
    if "template_id" not in made:
        made["template_id"] = await _forge_template(client, owner, tmp_path, made)
    body = {"domain_id": made["domain_id"], "template_id": made["template_id"], "name": "isolation", "provider": "openai"}
    dataset = (await client.post("/api/v1/datasets", headers=owner.headers, json=body)).json()
    generate = await client.post("/api/v1/datasets/generate", headers=owner.headers, json={"dataset_id": dataset["id"], "segment_ids": [made["segment_id"]]})
    assert generate.status_code == 202, generate.text
    await succeeded(client, owner, generate.json()["job_id"])
    listed = await client.get("/api/v1/dataset/review/pending", headers=owner.headers, params={"dataset_id": dataset["id"]})
    return listed.json()[0]["id"]


# How to make, in a workspace, the thing each `{x_id}` names. A new id parameter must be added here.
ID_FACTORIES: dict[str, Callable[[httpx.AsyncClient, Account, Path, dict[str, str]], Awaitable[str]]] = {
    "dataset_id": _make_dataset,
    "model_id": _model,
    "job_id": _job,
    "user_id": _user,
    "prediction_id": _prediction,
    "batch_id": _batch,
    "database_id": _database,
    "stream_id": _stream,
    "pipeline_id": _pipeline,
    "rule_id": _rule,
    "alert_id": _alert,
    "domain_id": _forge_domain,
    "document_id": _forge_document,
    "segment_id": _forge_segment,
    "template_id": _forge_template,
    "item_id": _forge_item,
    "export_id": _forge_export,
    "webhook_id": _webhook,
    "delivery_id": _delivery,
    "machine_id": _machine,
}
# What the factories that cannot go through HTTP use (the test database, set per test).
FACTORY_CONTEXT: dict[str, Database] = {}


@pytest.fixture(autouse=True)
def _factory_context(database: Database) -> None:
    FACTORY_CONTEXT["database"] = database

# Bodies and query strings that override what the route table documents. Deleting with
# force=true is the most an intruder could try.
BODIES: dict[str, dict] = {
    # The documented example ({"role": "member"}) would not change A's member: make it show.
    "PATCH /api/v1/workspace/members/{user_id}": {"role": "viewer", "is_active": False},
}
QUERIES: dict[str, dict[str, str]] = {
    "DELETE /api/v1/datasets/{dataset_id}": {"force": "true"},
}


async def populate(client: httpx.AsyncClient, tmp_path: Path) -> WorkspaceA:
    owner = await register(client)
    made: dict[str, str] = {}
    for name, factory in ID_FACTORIES.items():
        if name not in made:
            made[name] = await factory(client, owner, tmp_path, made)
    await succeeded(client, owner, made["job_id"])
    return WorkspaceA(owner, made)


async def succeeded(client: httpx.AsyncClient, owner: Account, job_id: str) -> None:
    # The forecast exists only once training is done: wait, so that the owner's control
    # calls below all answer 200 and a 404 for B means "not yours", not "not ready".
    job = await wait_for_job(client, owner, job_id)
    assert job["status"] == "succeeded", job


# Reads whose answer carries the time it was made: compared without those fields.
STAMPED = {
    "GET /api/v1/pipelines/{pipeline_id}/export": ("exported_at", "signature"),
    "GET /api/v1/datasets/exports/{export_id}/download": ("download_url", "expires_at"),
}


def comparable(route: IdRoute, response: httpx.Response) -> object:
    if route.key not in STAMPED:
        return response.content
    return {k: v for k, v in response.json().items() if k not in STAMPED[route.key]}


async def call(client: httpx.AsyncClient, route: IdRoute, ids: dict[str, str], account: Account) -> httpx.Response:
    body = BODIES.get(route.key, route.body)
    return await client.request(route.method, route.url(ids), headers=account.headers, json=body, params=QUERIES.get(route.key))


def test_routes_are_discovered(settings: Settings) -> None:
    # Guards the walk itself: if FastAPI's route table changes shape, this must not go quiet.
    keys = {route.key for route in discover_id_routes(settings)}
    assert {
        "GET /api/v1/datasets/{dataset_id}",
        "GET /api/v1/models/{model_id}",
        "GET /api/v1/models/{model_id}/forecast",
        "GET /api/v1/models/{model_id}/training/status",
        "GET /api/v1/jobs/{job_id}",
        "POST /api/v1/jobs/{job_id}/cancel",
        "PATCH /api/v1/workspace/members/{user_id}",
    } <= keys, keys


def test_every_id_route_is_known(settings: Settings) -> None:
    unknown = {(route.key, param) for route in discover_id_routes(settings) for param in route.params if param not in ID_FACTORIES}
    assert not unknown, f"teach test_workspace_isolation how to create these: {sorted(unknown)}"
    stale = (set(BODIES) | set(QUERIES)) - {route.key for route in discover_id_routes(settings)}
    assert not stale, f"BODIES/QUERIES name routes that no longer exist: {stale}"


async def test_another_workspace_gets_404_for_every_id_route(client: httpx.AsyncClient, settings: Settings, tmp_path: Path) -> None:
    workspace_a = await populate(client, tmp_path)
    intruder = await register(client)  # admin of workspace B: every role check passes
    routes = discover_id_routes(settings)

    # Control: the owner reaches every one of these ids (so a 404 below is about the workspace).
    # Only reads: the writes would change A before the intruder tries them.
    before = {}
    for route in routes:
        if route.method == "GET":
            response = await call(client, route, workspace_a.ids, workspace_a.owner)
            assert 200 <= response.status_code < 300, (route.key, response.status_code, response.text[:300])
            before[route.key] = comparable(route, response)

    failures = []
    for route in routes:
        response = await call(client, route, workspace_a.ids, intruder)
        if response.status_code != 404:
            failures.append((route.key, response.status_code, response.text[:200]))
            continue
        body = assert_envelope(response, 404)
        assert body["details"] == {}, (route.key, body)
    assert not failures, failures

    # And nothing in A was changed by the attempts: every read answers as before.
    owner = workspace_a.owner
    for route in routes:
        if route.method == "GET":
            response = await call(client, route, workspace_a.ids, owner)
            assert response.status_code == 200 and comparable(route, response) == before[route.key], route.key
    members = {m["id"]: m for m in (await client.get("/api/v1/workspace/members", headers=owner.headers)).json()}
    assert members[workspace_a.ids["user_id"]]["role"] == "member"
    assert members[workspace_a.ids["user_id"]]["is_active"] is True
    job = (await client.get(f"/api/v1/jobs/{workspace_a.ids['job_id']}", headers=owner.headers)).json()
    assert job["status"] != "cancelled" and not job.get("cancel_requested", False), job
    # B's own listings stay empty of A's rows.
    for url in ("/api/v1/datasets", "/api/v1/models", "/api/v1/jobs"):
        listing = await client.get(url, headers=intruder.headers)
        assert listing.status_code == 200 and listing.json() == [], (url, listing.text)
    assert [m["id"] for m in (await client.get("/api/v1/workspace/members", headers=intruder.headers)).json()] == [intruder.user_id]


async def test_a_viewer_of_another_workspace_gets_404_not_403(client: httpx.AsyncClient, settings: Settings, tmp_path: Path) -> None:
    """Even where B's caller lacks the role, it must not learn that A's id exists: a 403 for
    someone else's id is fine only if the same 403 comes for a random id."""
    workspace_a = await populate(client, tmp_path)
    b_admin = await register(client)
    b_viewer = await add_member(client, b_admin, "viewer")
    random_ids = {name: str(uuid.uuid4()) for name in ID_FACTORIES}
    for route in discover_id_routes(settings):
        foreign = await call(client, route, workspace_a.ids, b_viewer)
        missing = await call(client, route, random_ids, b_viewer)
        assert foreign.status_code in (403, 404), (route.key, foreign.text)
        assert foreign.status_code == missing.status_code, (route.key, foreign.status_code, missing.status_code)
        assert_envelope(foreign, foreign.status_code)


async def test_random_ids_are_404(client: httpx.AsyncClient, account: Account, settings: Settings) -> None:
    ids = {name: str(uuid.uuid4()) for name in ID_FACTORIES}
    for route in discover_id_routes(settings):
        response = await call(client, route, ids, account)
        body = assert_envelope(response, 404)
        assert body["details"] == {}, route.key


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g"])
async def test_non_uuid_ids_are_422(client: httpx.AsyncClient, account: Account, settings: Settings, bad_id: str) -> None:
    for route in discover_id_routes(settings):
        ids = {name: bad_id for name in ID_FACTORIES}
        response = await call(client, route, ids, account)
        details = assert_envelope(response, 422)["details"]
        assert set(route.params) <= set(details), (route.key, details)


async def test_ids_are_not_guessable_from_another_workspace_listing(client: httpx.AsyncClient, tmp_path: Path) -> None:
    workspace_a = await populate(client, tmp_path)
    intruder = await register(client)
    # Filters on the list endpoints do not widen the scope either.
    for url, params in (("/api/v1/jobs", {"type": "training"}), ("/api/v1/models", {"kind": "forecasting"}), ("/api/v1/datasets", {"kind": "tabular"}), ("/api/v1/datasets", {"search": "h"})):
        response = await client.get(url, headers=intruder.headers, params=params)
        assert response.status_code == 200
        assert response.json() == []
        assert response.headers["X-Total-Count"] == "0"
    assert workspace_a.ids  # A did have rows
