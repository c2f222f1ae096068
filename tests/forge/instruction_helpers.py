"""Shared steps of the instruction-data tests: segments to generate from, a dataset, a
generation run waited for."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import httpx

from tests.conftest import Account
from tests.forge.test_documents import domain_of, process, settled, upload

PARAGRAPHS = [
    "O cartão de benefícios é aceito em todos os estabelecimentos credenciados da rede, em qualquer cidade do país.",
    "O saldo do vale-refeição pode ser consultado pelo aplicativo ou pelo site, na área do beneficiário.",
    "Em caso de perda do cartão, o beneficiário deve pedir o bloqueio imediato pelo aplicativo e solicitar uma segunda via.",
]


@dataclass
class Source:
    domain_id: str
    template_id: str
    document_id: str
    segment_ids: list[str]


async def source(client: httpx.AsyncClient, account: Account, paragraphs: list[str] = PARAGRAPHS, domain_id: str | None = None) -> Source:
    """A domain (or the one given), a processed TXT document of these paragraphs, a template."""
    domain_id = domain_id or await domain_of(client, account)
    uploaded = await upload(client, account, domain_id, "\n\n".join(paragraphs).encode(), "beneficios.txt")
    assert uploaded.status_code == 201, uploaded.text
    document_id = uploaded.json()["id"]
    await process(client, account, document_id, "paragraph")
    assert (await settled(client, account, document_id))["status"] == "processed"
    listed = await client.get("/api/v1/segments", headers=account.headers, params={"document_id": document_id})
    body = {"domain_id": domain_id, "name": "Perguntas", "system_prompt": "Você cria dados de treino.", "user_prompt_template": "Contexto: {content}"}
    template = await client.post("/api/v1/templates", headers=account.headers, json=body)
    assert template.status_code == 201, template.text
    return Source(domain_id, template.json()["id"], document_id, [s["id"] for s in listed.json()])


def model_name() -> str:
    """A model of the test's own: the provider server scripts its answers by model."""
    return f"test-model-{uuid.uuid4().hex[:10]}"


async def create_dataset(client: httpx.AsyncClient, account: Account, src: Source, provider: str = "openai", **fields: object) -> dict:
    body = {"domain_id": src.domain_id, "template_id": src.template_id, "name": "Dataset Chat", "provider": provider, **fields}
    body.setdefault("generation_config", {"model": model_name(), "temperature": 0.2})
    response = await client.post("/api/v1/datasets", headers=account.headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def start(client: httpx.AsyncClient, account: Account, dataset_id: str, **body: object) -> dict:
    response = await client.post("/api/v1/datasets/generate", headers=account.headers, json={"dataset_id": dataset_id, **body})
    assert response.status_code == 202, response.text
    return response.json()


async def finished(client: httpx.AsyncClient, account: Account, dataset_id: str, timeout: float = 60) -> dict:
    """The dataset once its generation is over, and the job's final state."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        dataset = (await client.get(f"/api/v1/datasets/{dataset_id}", headers=account.headers)).json()
        job = (await client.get(f"/api/v1/jobs/{dataset['job_id']}", headers=account.headers)).json() if dataset["job_id"] else None
        if dataset["status"] != "generating" and (job is None or job["status"] in ("succeeded", "failed", "cancelled")):
            return {**dataset, "job": job}
        assert asyncio.get_running_loop().time() < deadline, (dataset, job)
        await asyncio.sleep(0.1)


async def generated(client: httpx.AsyncClient, account: Account, src: Source | None = None, **dataset_fields: object) -> tuple[dict, list[dict]]:
    """A dataset whose generation ran to the end, and its pending items."""
    src = src or await source(client, account)
    dataset = await create_dataset(client, account, src, **dataset_fields)
    await start(client, account, dataset["id"])
    done = await finished(client, account, dataset["id"])
    assert done["job"]["status"] == "succeeded", done
    return done, await pending(client, account, dataset["id"])


async def pending(client: httpx.AsyncClient, account: Account, dataset_id: str) -> list[dict]:
    response = await client.get("/api/v1/dataset/review/pending", headers=account.headers, params={"dataset_id": dataset_id, "limit": "500"})
    assert response.status_code == 200, response.text
    return response.json()
