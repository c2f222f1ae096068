"""Fine-tuning jobs at OpenAI and Together, against a local server that speaks their wire
formats. The tests advance jobs with the poller's own function (the test server's poller
is off), so each step happens when they say."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Account, assert_envelope
from tests.forge.finetune_server import API_KEY, FinetuneServer
from tests.forge.instruction_data import Item, instruction_dataset
from vur.core.db import Database
from vur.core.storage import LocalArtifactStore
from vur.forge.finetune_poller import MAX_FAILED_POLLS, advance_due, finetune_poller
from vur.settings import Settings

pytestmark = pytest.mark.anyio

POLL = 0.05


@pytest.fixture(scope="module")
def finetune_server() -> Iterator[FinetuneServer]:
    with FinetuneServer() as server:
        yield server


@pytest.fixture
def poll_settings(settings: Settings, finetune_server: FinetuneServer) -> Settings:
    return settings.model_copy(
        update={
            "forge_openai_base_url": finetune_server.base_url,
            "forge_together_base_url": finetune_server.base_url,
            "forge_openai_api_key": API_KEY,
            "forge_together_api_key": API_KEY,
            "forge_provider_timeout_seconds": 2.0,
            "forge_finetune_poll_seconds": POLL,
        }
    )


class Setup:
    def __init__(self, client: httpx.AsyncClient, account: Account, database: Database, settings: Settings) -> None:
        self.client, self.account, self.database, self.settings = client, account, database, settings
        self.store = LocalArtifactStore(settings.artifacts_dir)

    async def model(self, provider: str, base_model: str) -> str:
        response = await self.client.post("/api/v1/models", headers=self.account.headers, json={"name": base_model, "base_model": base_model, "provider": provider})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    async def exported(self, **body: object) -> tuple[str, dict]:
        dataset_id = instruction_dataset(self.database, self.account.workspace_id, [Item(), Item(instruction="Outra pergunta")])
        response = await self.client.post(f"/api/v1/datasets/{dataset_id}/export", headers=self.account.headers, json=body)
        assert response.status_code == 200, response.text
        return dataset_id, response.json()

    async def job(self, **body: object) -> httpx.Response:
        return await self.client.post("/api/v1/training-jobs", headers=self.account.headers, json=body)

    async def read(self, job_id: str) -> dict:
        return (await self.client.get(f"/api/v1/training-jobs/{job_id}", headers=self.account.headers)).json()

    async def advance_until(self, job_id: str, *statuses: str, settings: Settings | None = None, passes: int = 40) -> dict:
        for _ in range(passes):
            advance_due(self.database, self.store, settings or self.settings)
            job = await self.read(job_id)
            if job["status"] in statuses:
                return job
            await asyncio.sleep(POLL)
        raise AssertionError(f"job never reached {statuses}: {job}")

    async def model_read(self, model_id: str) -> dict:
        return (await self.client.get(f"/api/v1/models/{model_id}", headers=self.account.headers)).json()


@pytest.fixture
def setup(client: httpx.AsyncClient, account: Account, database: Database, poll_settings: Settings) -> Setup:
    return Setup(client, account, database, poll_settings)


async def test_openai_fine_tuning_from_upload_to_fine_tuned_model(setup: Setup, finetune_server: FinetuneServer) -> None:
    model_id = await setup.model("openai", "gpt-4o-mini-2024-07-18")
    dataset_id, export = await setup.exported()
    body = {"model_id": model_id, "dataset_id": dataset_id, "provider": "openai", "hyperparameters": {"epochs": 3, "batch_size": 8, "learning_rate_multiplier": 0.5}, "suffix": "vr"}
    created = await setup.job(**body)
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["status"] == "pending" and job["dataset_export_id"] == export["id"] and job["external_job_id"] is None and job["type"] == "fine_tuning"
    assert (await setup.model_read(model_id))["status"] == "training"

    running = await setup.advance_until(job["id"], "running")
    assert running["external_job_id"].startswith("ftjob-") and running["started_at"] is not None
    done = await setup.advance_until(job["id"], "completed")
    assert done["metrics"]["train_loss"] == 0.05 and done["metrics"]["step"] == 20 and done["metrics"]["trained_tokens"] == 4200
    assert done["completed_at"] is not None and done["error_message"] is None

    remote = finetune_server.jobs[done["external_job_id"]]
    assert remote.body["method"] == {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 3, "batch_size": 8, "learning_rate_multiplier": 0.5}}}
    assert remote.body["suffix"] == "vr"
    uploaded = finetune_server.files[remote.body["training_file"]]["content"]
    assert [json.loads(line)["messages"][-1]["role"] for line in uploaded.decode().splitlines()] == ["assistant", "assistant"]

    model = await setup.model_read(model_id)
    assert model["status"] == "trained" and model["config"]["fine_tuned_model"] == done["metrics"]["fine_tuned_model"]
    assert model["config"]["fine_tuned_model"].startswith("ft:gpt-4o-mini-2024-07-18:vur:vr:")
    assert (await setup.client.post(f"/api/v1/models/{model_id}/deploy", headers=setup.account.headers)).json()["status"] == "deployed"

    listed = await setup.client.get("/api/v1/training-jobs", headers=setup.account.headers, params={"model_id": model_id, "status": "completed"})
    assert [j["id"] for j in listed.json()] == [job["id"]] and listed.headers["X-Total-Count"] == "1"
    assert (await setup.client.get("/api/v1/training-jobs", headers=setup.account.headers, params={"status": "running"})).json() == []


async def test_together_dpo_on_a_preference_export(setup: Setup, finetune_server: FinetuneServer) -> None:
    model_id = await setup.model("together", "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference")
    dataset_id, export = await setup.exported(layout="preference")
    job = (await setup.job(model_id=model_id, dataset_id=dataset_id, dataset_export_id=export["id"], provider="together", hyperparameters={"learning_rate": 2e-5, "epochs": 2})).json()
    done = await setup.advance_until(job["id"], "completed")
    remote = finetune_server.jobs[done["external_job_id"]]
    assert remote.body["training_method"] == {"method": "dpo"} and remote.body["n_epochs"] == 2 and remote.body["learning_rate"] == 2e-5
    assert done["metrics"]["step"] == 12 and done["metrics"]["total_steps"] == 24
    assert (await setup.model_read(model_id))["config"]["fine_tuned_model"] == "vur-test/Meta-Llama-3.1-8B-Instruct-Reference-ft"


@pytest.mark.parametrize("provider, base_model, message", [("openai", "gpt-fail", "too few examples"), ("together", "llama-fail", "invalid line 3")])
async def test_a_job_the_provider_fails_records_why(setup: Setup, provider: str, base_model: str, message: str) -> None:
    model_id = await setup.model(provider, base_model)
    dataset_id, _ = await setup.exported()
    job = (await setup.job(model_id=model_id, dataset_id=dataset_id, provider=provider)).json()
    failed = await setup.advance_until(job["id"], "failed")
    assert message in failed["error_message"]
    assert (await setup.model_read(model_id))["status"] == "registered"


async def test_a_bad_key_fails_the_job_at_once(setup: Setup) -> None:
    model_id = await setup.model("openai", "gpt-4o-mini")
    dataset_id, _ = await setup.exported()
    job = (await setup.job(model_id=model_id, dataset_id=dataset_id, provider="openai")).json()
    wrong = setup.settings.model_copy(update={"forge_openai_api_key": "sk-wrong"})
    failed = await setup.advance_until(job["id"], "failed", settings=wrong, passes=2)
    assert failed["error_message"] == "openai answered 401: Incorrect API key provided"
    missing = setup.settings.model_copy(update={"forge_together_api_key": ""})
    model_id = await setup.model("together", "llama")
    job = (await setup.job(model_id=model_id, dataset_id=dataset_id, provider="together")).json()
    assert "VUR_FORGE_TOGETHER_API_KEY" in (await setup.advance_until(job["id"], "failed", settings=missing, passes=2))["error_message"]


async def test_the_workspaces_own_key_wins_over_the_servers(setup: Setup) -> None:
    """A key stored with /api/v1/provider-keys is the one the provider sees."""
    stored = await setup.client.post("/api/v1/provider-keys", headers=setup.account.headers, json={"provider": "openai", "api_key": API_KEY})
    assert stored.status_code in (200, 201), stored.text
    model_id = await setup.model("openai", "gpt-4o-mini")
    dataset_id, _ = await setup.exported()
    job = (await setup.job(model_id=model_id, dataset_id=dataset_id, provider="openai")).json()
    server_key_wrong = setup.settings.model_copy(update={"forge_openai_api_key": "sk-wrong"})
    assert (await setup.advance_until(job["id"], "running", "completed", settings=server_key_wrong))["error_message"] is None


async def test_rate_limits_and_server_errors_are_retried(setup: Setup, finetune_server: FinetuneServer) -> None:
    model_id = await setup.model("openai", "gpt-4o-mini")
    dataset_id, _ = await setup.exported()
    job = (await setup.job(model_id=model_id, dataset_id=dataset_id, provider="openai")).json()
    finetune_server.inject("POST", r"/v1/files$", 429, {"error": {"message": "Rate limit reached", "type": "requests"}}, {"Retry-After": "0"})
    finetune_server.inject("POST", r"/v1/fine_tuning/jobs$", 500)
    advance_due(setup.database, setup.store, setup.settings)
    waiting = await setup.read(job["id"])
    assert waiting["status"] == "pending" and "429" in waiting["error_message"]
    done = await setup.advance_until(job["id"], "completed")
    assert done["error_message"] is None

    job = (await setup.job(model_id=await setup.model("openai", "gpt-4o-mini"), dataset_id=dataset_id, provider="openai")).json()
    for _ in range(MAX_FAILED_POLLS):
        finetune_server.inject("POST", r"/v1/files$", 503, headers={"Retry-After": "0"})
    failed = await setup.advance_until(job["id"], "failed")
    assert f"gave up after {MAX_FAILED_POLLS} failed calls" in failed["error_message"]


async def test_a_lost_create_answer_is_adopted_not_made_twice(setup: Setup, finetune_server: FinetuneServer) -> None:
    """The provider made the job but its answer never arrived (here a 500 after the work,
    as a timeout would lose it): the next pass finds the job made from the recorded file."""
    model_id = await setup.model("openai", "gpt-4o-mini")
    dataset_id, _ = await setup.exported()
    job = (await setup.job(model_id=model_id, dataset_id=dataset_id, provider="openai")).json()
    before, uploads = set(finetune_server.jobs), finetune_server.requests.count(("POST", "/v1/files"))
    finetune_server.inject("POST", r"/v1/fine_tuning/jobs$", 500, performed=True)
    advance_due(setup.database, setup.store, setup.settings)
    lost = await setup.read(job["id"])
    assert lost["status"] == "pending" and lost["external_job_id"] is None and "500" in lost["error_message"]
    [made] = set(finetune_server.jobs) - before
    done = await setup.advance_until(job["id"], "completed")
    assert done["external_job_id"] == made and set(finetune_server.jobs) - before == {made}
    assert finetune_server.requests.count(("POST", "/v1/files")) == uploads + 1


@pytest.mark.parametrize("lost_create", [True, False])
async def test_cancel_between_upload_and_creation(setup: Setup, finetune_server: FinetuneServer, lost_create: bool) -> None:
    """Once the file is at the provider, a cancel waits for the poller: it cancels a job a
    lost answer made, or withdraws the request when no job was made."""
    model_id = await setup.model("openai", "gpt-4o-mini")
    dataset_id, _ = await setup.exported()
    job = (await setup.job(model_id=model_id, dataset_id=dataset_id, provider="openai")).json()
    before = set(finetune_server.jobs)
    finetune_server.inject("POST", r"/v1/fine_tuning/jobs$", 500, performed=lost_create)
    advance_due(setup.database, setup.store, setup.settings)
    asked = (await setup.client.post(f"/api/v1/training-jobs/{job['id']}/cancel", headers=setup.account.headers)).json()
    assert asked["status"] == "pending" and asked["cancel_requested"] is True
    done = await setup.advance_until(job["id"], "cancelled")
    made = set(finetune_server.jobs) - before
    if lost_create:
        assert finetune_server.jobs[done["external_job_id"]].status == "cancelled" and made == {done["external_job_id"]}
    else:
        assert made == set() and done["error_message"] == "Cancelled before it reached the provider"
    assert (await setup.model_read(model_id))["status"] == "registered"


async def test_cancel_before_and_after_submission(setup: Setup, finetune_server: FinetuneServer) -> None:
    dataset_id, _ = await setup.exported()
    model_id = await setup.model("together", "llama-slow")
    pending = (await setup.job(model_id=model_id, dataset_id=dataset_id, provider="together")).json()
    cancelled = await setup.client.post(f"/api/v1/training-jobs/{pending['id']}/cancel", headers=setup.account.headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert (await setup.model_read(model_id))["status"] == "registered"
    assert_envelope(await setup.client.post(f"/api/v1/training-jobs/{pending['id']}/cancel", headers=setup.account.headers), 409)

    job = (await setup.job(model_id=model_id, dataset_id=dataset_id, provider="together")).json()
    running = await setup.advance_until(job["id"], "running")
    asked = (await setup.client.post(f"/api/v1/training-jobs/{job['id']}/cancel", headers=setup.account.headers)).json()
    assert asked["status"] == "running" and asked["cancel_requested"] is True
    done = await setup.advance_until(job["id"], "cancelled")
    assert finetune_server.jobs[running["external_job_id"]].status in ("cancel_requested", "cancelled")
    assert done["completed_at"] is not None
    assert (await setup.model_read(model_id))["status"] == "registered"


async def test_the_periodic_poller_advances_jobs_on_its_own(setup: Setup) -> None:
    model_id = await setup.model("openai", "gpt-4o-mini")
    dataset_id, _ = await setup.exported()
    job = (await setup.job(model_id=model_id, dataset_id=dataset_id, provider="openai")).json()
    poller = finetune_poller(setup.database, setup.store, setup.settings)
    poller.start()
    try:
        for _ in range(100):
            if (await setup.read(job["id"]))["status"] == "completed":
                break
            await asyncio.sleep(POLL)
    finally:
        poller.stop()
    assert (await setup.read(job["id"]))["status"] == "completed"


async def test_bad_training_job_requests(setup: Setup, other_account: Account) -> None:
    model_id = await setup.model("openai", "gpt-4o-mini")
    no_export = instruction_dataset(setup.database, setup.account.workspace_id, [Item()])
    body = {"model_id": model_id, "dataset_id": no_export, "provider": "openai"}
    assert "dataset_export_id" in assert_envelope(await setup.job(**body), 422)["details"]
    dataset_id, _ = await setup.exported()
    _, csv_export = await setup.exported(format="csv")
    _, foreign_export = await setup.exported()
    cases = [
        ({**body, "dataset_id": dataset_id, "provider": "huggingface"}, 422, "provider"),
        ({**body, "dataset_id": dataset_id, "hyperparameters": {"learning_rate": 2e-5}}, 422, "hyperparameters.learning_rate"),
        ({**body, "dataset_id": dataset_id, "hyperparameters": {"epochs": "three"}}, 422, "hyperparameters.epochs"),
        ({**body, "dataset_id": dataset_id, "hyperparameters": {"warmup_steps": 100}}, 422, "hyperparameters.warmup_steps"),
        ({**body, "dataset_id": dataset_id, "suffix": "../../x"}, 422, "suffix"),
        ({**body, "dataset_id": dataset_id, "dataset_export_id": csv_export["id"]}, 422, "dataset_export_id"),
        ({**body, "dataset_id": dataset_id, "dataset_export_id": foreign_export["id"]}, 422, "dataset_export_id"),
        ({**body, "dataset_id": dataset_id, "model_id": "00000000-0000-4000-8000-000000000000"}, 404, None),
        ({**body, "dataset_id": "00000000-0000-4000-8000-000000000000"}, 404, None),
        ({"dataset_id": dataset_id, "provider": "openai"}, 422, "model_id"),
    ]
    for request, status, field in cases:
        details = assert_envelope(await setup.job(**request), status)["details"]
        assert field is None or field in details, (request, details)
    assert (await setup.client.get("/api/v1/training-jobs", headers=setup.account.headers)).json() == []
    assert (await setup.model_read(model_id))["status"] == "registered"
    # Another workspace's model, and a model already training.
    foreign_model = (await setup.client.post("/api/v1/models", headers=other_account.headers, json={"name": "B", "base_model": "b", "provider": "openai"})).json()["id"]
    assert_envelope(await setup.job(model_id=foreign_model, dataset_id=dataset_id, provider="openai"), 404)
    assert (await setup.job(model_id=model_id, dataset_id=dataset_id, provider="openai")).status_code == 201
    assert_envelope(await setup.job(model_id=model_id, dataset_id=dataset_id, provider="openai"), 409)
    assert_envelope(await setup.client.get("/api/v1/training-jobs/00000000-0000-4000-8000-000000000000", headers=setup.account.headers), 404)
