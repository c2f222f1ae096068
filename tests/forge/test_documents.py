"""Documents over HTTP: upload (format from the bytes, size limit, nothing left behind
on refusal), processing into versions of segments by a job, failures with their reason,
and the segment listings."""

from __future__ import annotations

import asyncio
import io
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import Account, add_member, assert_envelope
from tests.forge.samples import CHAT, CONTRACT, CRM, FAQ, encrypted_pdf, make_docx, make_pdf, zip_bomb_docx
from vur.core.db import Database
from vur.forge.models import Document
from vur.settings import Settings

pytestmark = pytest.mark.anyio

SEED_FIELDS = {"id", "domain_id", "use_case", "filename", "original_filename", "s3_key", "content_type", "file_size", "status", "metadata", "created_at", "updated_at"}
SEGMENT_FIELDS = {"id", "domain_id", "document_id", "document_version_id", "use_case", "segment_type", "content", "position", "metadata", "created_at"}


async def domain_of(client: httpx.AsyncClient, account: Account) -> str:
    response = await client.post("/api/v1/domains", headers=account.headers, json={"name": "VR Chat", "slug": f"vr-{uuid.uuid4().hex[:8]}"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def upload(client: httpx.AsyncClient, account: Account, domain_id: str, content: bytes, filename: str = "doc.pdf", **params: str) -> httpx.Response:
    return await client.post(
        "/api/v1/documents/upload",
        headers=account.headers,
        params={"domain_id": domain_id, **params},
        files={"file": (filename, io.BytesIO(content), "application/octet-stream")},
    )


async def uploaded(client: httpx.AsyncClient, account: Account, content: bytes, filename: str = "doc.pdf", **params: str) -> dict:
    response = await upload(client, account, await domain_of(client, account), content, filename, **params)
    assert response.status_code == 201, response.text
    return response.json()


async def process(client: httpx.AsyncClient, account: Account, document_id: str, segment_type: str, **config: int) -> dict:
    response = await client.post(f"/api/v1/documents/{document_id}/process", headers=account.headers, json={"segment_type": segment_type, "segment_config": config})
    assert response.status_code == 202, response.text
    return response.json()


async def settled(client: httpx.AsyncClient, account: Account, document_id: str, timeout: float = 60) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        document = (await client.get(f"/api/v1/documents/{document_id}", headers=account.headers)).json()
        if document["status"] not in ("uploaded", "processing"):
            return document
        assert asyncio.get_running_loop().time() < deadline, document
        await asyncio.sleep(0.2)


async def segments(client: httpx.AsyncClient, account: Account, **params: str) -> list[dict]:
    response = await client.get("/api/v1/segments", headers=account.headers, params={"limit": "500", **params})
    assert response.status_code == 200, response.text
    assert int(response.headers["X-Total-Count"]) == len(response.json())
    return response.json()


def stored_files(settings: Settings, account: Account) -> list[Path]:
    folder = settings.artifacts_dir / "documents" / account.workspace_id.replace("-", "")
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


async def document_count(client: httpx.AsyncClient, account: Account) -> int:
    return int((await client.get("/api/v1/documents", headers=account.headers)).headers["X-Total-Count"])


async def test_pdf_upload_and_paragraphs_page_by_page(client: httpx.AsyncClient, account: Account, settings: Settings) -> None:
    first_page = [
        "O programa de benefícios cresceu vinte por cento no ano, com novos clientes",
        "em todas as regiões.",
        "A satisfação dos usuários também aumentou de forma consistente no período.",
    ]
    pdf = make_pdf([first_page, ["Página dois: conclusões finais."]])
    domain_id = await domain_of(client, account)
    response = await upload(client, account, domain_id, pdf, "relatório.PDF", use_case="chat-training")
    assert response.status_code == 201, response.text
    document = response.json()
    assert SEED_FIELDS <= set(document)
    assert document["status"] == "uploaded" and document["domain_id"] == domain_id and document["use_case"] == "chat-training"
    assert document["content_type"] == "application/pdf" and document["file_size"] == len(pdf)
    assert document["original_filename"] == "relatório.PDF" and document["filename"] == "relatório.pdf"
    assert document["current_version"] is None and document["error_message"] is None
    assert [p.read_bytes() for p in stored_files(settings, account)] == [pdf]
    assert document["s3_key"].startswith("documents/")

    accepted = await process(client, account, document["id"], "paragraph", max_length=500)
    assert accepted["status"] == "processing" and set(accepted) == {"status", "version_id", "job_id"}
    done = await settled(client, account, document["id"])
    assert done["status"] == "processed", done
    assert done["current_version_id"] == accepted["version_id"] and done["current_version"] == 1
    assert done["metadata"]["pages"] == 2 and done["metadata"]["segment_count"] == 3
    job = (await client.get(f"/api/v1/jobs/{accepted['job_id']}", headers=account.headers)).json()
    assert job["status"] == "succeeded" and job["type"] == "forge.process_document"

    listed = await segments(client, account, document_id=document["id"])
    # PDF lines carry no paragraph marks: a short line that ends a sentence ends its paragraph.
    assert [s["content"] for s in listed] == [f"{first_page[0]}\n{first_page[1]}", first_page[2], "Página dois: conclusões finais."]
    assert [s["metadata"]["page"] for s in listed] == [1, 1, 2] and [s["position"] for s in listed] == [0, 1, 2]
    assert set(listed[0]) == SEGMENT_FIELDS
    assert {(s["document_version_id"], s["segment_type"], s["use_case"], s["domain_id"]) for s in listed} == {(accepted["version_id"], "paragraph", "chat-training", domain_id)}
    one = await client.get(f"/api/v1/segments/{listed[2]['id']}", headers=account.headers)
    assert one.json() == listed[2]


async def test_docx_paragraphs_and_table(client: httpx.AsyncClient, account: Account) -> None:
    content = make_docx(["Clientes atendidos em março.", "Veja a tabela abaixo."], [["Cliente", "Plano"], ["Ana", "Ouro"], ["João", "Prata"]])
    document = await uploaded(client, account, content, "clientes.bin")
    assert document["content_type"].endswith("wordprocessingml.document") and document["filename"] == "clientes.docx"
    await process(client, account, document["id"], "paragraph")
    assert (await settled(client, account, document["id"]))["status"] == "processed"
    assert [s["content"] for s in await segments(client, account, document_id=document["id"])] == [
        "Clientes atendidos em março.",
        "Veja a tabela abaixo.",
        "Cliente: Ana | Plano: Ouro\nCliente: João | Plano: Prata",
    ]


@pytest.mark.parametrize(
    ("text", "encoding", "segment_type", "key", "expected"),
    [
        (CONTRACT.replace("–", "-"), "latin-1", "clause", "number", [None, "1.1", "1.2", "2.1", "2.2", "Cláusula 3ª"]),
        (CHAT, "utf-8", "chat_message", "speaker", ["Ana", "Atendente VR", "Ana", "Atendente VR"]),
        (FAQ, "utf-8", "faq", "question", ["Como desbloqueio meu cartão?", "Posso usar o cartão no exterior?", "Como consulto meu saldo?"]),
        (CRM, "cp1252", "crm_record", "record", [1, 2, 3]),
    ],
)
async def test_each_segment_type_on_text_files(client: httpx.AsyncClient, account: Account, text: str, encoding: str, segment_type: str, key: str, expected: list) -> None:
    document = await uploaded(client, account, text.encode(encoding), f"{segment_type}.txt", use_case=segment_type)
    await process(client, account, document["id"], segment_type)
    assert (await settled(client, account, document["id"]))["status"] == "processed"
    listed = await segments(client, account, segment_type=segment_type, use_case=segment_type)
    assert [s["metadata"][key] for s in listed] == expected
    # The text was decoded right, whatever its encoding.
    assert any("ç" in s["content"] or "ã" in s["content"] or "ú" in s["content"] for s in listed)


async def test_markdown_is_recognised(client: httpx.AsyncClient, account: Account) -> None:
    document = await uploaded(client, account, FAQ.encode(), "faq.txt")
    assert document["content_type"] == "text/markdown" and document["filename"] == "faq.md"


async def test_max_length_and_overlap_are_honoured(client: httpx.AsyncClient, account: Account) -> None:
    text = " ".join(f"A cláusula de número {i} trata de um assunto diferente do contrato." for i in range(60))
    document = await uploaded(client, account, text.encode(), "long.txt")
    await process(client, account, document["id"], "paragraph", max_length=300, overlap=80)
    assert (await settled(client, account, document["id"]))["status"] == "processed"
    parts = [s["content"] for s in await segments(client, account, document_id=document["id"])]
    assert len(parts) > 5 and all(len(p) <= 300 for p in parts)
    for before, after in zip(parts, parts[1:], strict=False):
        assert any(before.endswith(after[:n]) for n in range(1, 81)), (before, after)


async def test_reprocessing_makes_version_two(client: httpx.AsyncClient, account: Account, database: Database) -> None:
    document = await uploaded(client, account, CONTRACT.encode(), "contrato.txt")
    first = await process(client, account, document["id"], "paragraph")
    await settled(client, account, document["id"])
    v1 = await segments(client, account, document_id=document["id"])

    # While a version is being processed, another may not start.
    with database.session() as session:
        session.get(Document, uuid.UUID(document["id"])).status = "processing"
    assert_envelope(await client.post(f"/api/v1/documents/{document['id']}/process", headers=account.headers, json={"segment_type": "clause"}), 409)
    with database.session() as session:
        session.get(Document, uuid.UUID(document["id"])).status = "processed"

    second = await process(client, account, document["id"], "clause")
    done = await settled(client, account, document["id"])
    assert done["current_version"] == 2 and done["current_version_id"] == second["version_id"] != first["version_id"]
    v2 = await segments(client, account, document_id=document["id"])
    assert {s["segment_type"] for s in v2} == {"clause"} and {s["document_version_id"] for s in v2} == {second["version_id"]}
    # The first version's segments are kept, and can still be read.
    old = await segments(client, account, document_version_id=first["version_id"])
    assert [s["id"] for s in old] == [s["id"] for s in v1]

    # A failed processing leaves the current version, and its segments, in place.
    await process(client, account, document["id"], "chat_message")
    failed = await settled(client, account, document["id"])
    assert failed["status"] == "failed" and "No chat messages found" in failed["error_message"]
    assert failed["current_version"] == 2
    assert [s["id"] for s in await segments(client, account, document_id=document["id"])] == [s["id"] for s in v2]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (encrypted_pdf([["Documento sigiloso."]]), "encrypted"),
        (make_pdf([[], []]), "no text"),
        (b"%PDF-1.7\n1 0 obj << broken", "damaged"),
    ],
)
async def test_unreadable_pdfs_fail_with_their_reason(client: httpx.AsyncClient, account: Account, content: bytes, says: str) -> None:
    document = await uploaded(client, account, content, "doc.pdf")
    accepted = await process(client, account, document["id"], "paragraph")
    failed = await settled(client, account, document["id"])
    assert failed["status"] == "failed" and says in failed["error_message"], failed
    assert failed["current_version"] is None
    job = (await client.get(f"/api/v1/jobs/{accepted['job_id']}", headers=account.headers)).json()
    assert job["status"] == "failed" and says in job["error"]
    assert await segments(client, account, document_id=document["id"]) == []


@pytest.mark.parametrize(
    ("content", "filename", "says"),
    [
        (b"\x7fELF\x02\x01\x01\x00" + bytes(2000), "manual.pdf", "ELF executable"),
        (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(2000), "contrato.pdf", "Windows executable"),
        (b"", "vazio.txt", "empty"),
        (bytes(range(256)) * 8, "dados.txt", "binary"),
        (b"PK\x03\x04 not really a zip" + bytes(100), "doc.docx", "cannot be opened"),
        (zip_bomb_docx(), "bomb.docx", "zip bomb"),
    ],
)
async def test_refused_uploads_leave_nothing(client: httpx.AsyncClient, account: Account, settings: Settings, content: bytes, filename: str, says: str) -> None:
    body = assert_envelope(await upload(client, account, await domain_of(client, account), content, filename), 422)
    assert says in body["error"] or says in str(body["details"]), body
    assert stored_files(settings, account) == []
    assert await document_count(client, account) == 0


async def test_oversized_upload_is_413_and_leaves_nothing(client: httpx.AsyncClient, account: Account, settings: Settings) -> None:
    domain_id = await domain_of(client, account)
    line = "Texto de um documento muito grande.\n".encode()
    body = assert_envelope(await upload(client, account, domain_id, line * (settings.max_upload_bytes // len(line) + 10), "grande.txt"), 413)
    assert body["details"]["max_bytes"] == settings.max_upload_bytes
    # Far over the limit, the body limit of the upload routes answers first, in the envelope too.
    assert_envelope(await upload(client, account, domain_id, line * (2 * settings.max_upload_bytes // len(line)), "enorme.txt"), 413)
    assert stored_files(settings, account) == []
    assert await document_count(client, account) == 0


async def test_upload_parameters_are_checked(client: httpx.AsyncClient, account: Account, other_account: Account, settings: Settings) -> None:
    domain_id = await domain_of(client, account)
    text = b"Um texto qualquer."
    assert_envelope(await upload(client, account, str(uuid.uuid4()), text), 404)
    assert_envelope(await upload(client, other_account, domain_id, text), 404)
    assert "domain_id" in assert_envelope(await upload(client, account, "not-a-uuid", text), 422)["details"]
    no_domain = await client.post("/api/v1/documents/upload", headers=account.headers, files={"file": ("a.txt", io.BytesIO(text), "text/plain")})
    assert "domain_id" in assert_envelope(no_domain, 422)["details"]
    no_file = await client.post("/api/v1/documents/upload", headers=account.headers, params={"domain_id": domain_id})
    assert "file" in assert_envelope(no_file, 422)["details"]
    assert "use_case" in assert_envelope(await upload(client, account, domain_id, text, use_case="u" * 101), 422)["details"]
    viewer = await add_member(client, account, "viewer")
    assert_envelope(await upload(client, viewer, domain_id, text), 403)
    assert stored_files(settings, account) == [] and await document_count(client, account) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"segment_type": "sentence"}, "segment_type"),
        ({}, "segment_type"),
        ({"segment_type": "paragraph", "segment_config": {"max_length": 10}}, "segment_config.max_length"),
        ({"segment_type": "paragraph", "segment_config": {"max_length": 500, "overlap": 300}}, "segment_config"),
        ({"segment_type": "paragraph", "segment_config": {"max_lenght": 500}}, "segment_config.max_lenght"),
    ],
)
async def test_process_body_is_validated(client: httpx.AsyncClient, account: Account, body: dict, field: str) -> None:
    document = await uploaded(client, account, b"Um texto.", "a.txt")
    details = assert_envelope(await client.post(f"/api/v1/documents/{document['id']}/process", headers=account.headers, json=body), 422)["details"]
    assert field in details, details
    assert (await client.get(f"/api/v1/documents/{document['id']}", headers=account.headers)).json()["status"] == "uploaded"


async def test_listings_filter_and_page(client: httpx.AsyncClient, account: Account, other_account: Account) -> None:
    domain_a, domain_b = await domain_of(client, account), await domain_of(client, account)
    for domain_id, use_case in ((domain_a, "chat"), (domain_a, "lex"), (domain_b, "chat")):
        assert (await upload(client, account, domain_id, FAQ.encode(), "faq.md", use_case=use_case)).status_code == 201
    by_domain = await client.get("/api/v1/documents", headers=account.headers, params={"domain_id": domain_a})
    assert by_domain.headers["X-Total-Count"] == "2"
    assert len((await client.get("/api/v1/documents", headers=account.headers, params={"use_case": "chat"})).json()) == 2
    page = await client.get("/api/v1/documents", headers=account.headers, params={"limit": 1, "offset": 1})
    assert len(page.json()) == 1 and page.headers["X-Total-Count"] == "3"
    assert (await client.get("/api/v1/documents", headers=account.headers, params={"status": "processed"})).json() == []
    for params, field in (({"status": "done"}, "status"), ({"limit": "0"}, "limit"), ({"domain_id": "x"}, "domain_id"), ({"offset": "-1"}, "offset")):
        assert field in assert_envelope(await client.get("/api/v1/documents", headers=account.headers, params=params), 422)["details"]
    for params, field in (({"segment_type": "sentence"}, "segment_type"), ({"document_id": "1"}, "document_id")):
        assert field in assert_envelope(await client.get("/api/v1/segments", headers=account.headers, params=params), 422)["details"]
    # Another workspace sees none of it, even when it names the ids.
    assert (await client.get("/api/v1/documents", headers=other_account.headers, params={"domain_id": domain_a})).json() == []
    assert (await client.get("/api/v1/segments", headers=other_account.headers, params={"domain_id": domain_a})).json() == []


async def test_documents_and_segments_of_another_workspace_are_404(client: httpx.AsyncClient, account: Account, other_account: Account) -> None:
    document = await uploaded(client, account, CHAT.encode(), "chat.txt")
    await process(client, account, document["id"], "chat_message")
    await settled(client, account, document["id"])
    segment_id = (await segments(client, account, document_id=document["id"]))[0]["id"]
    assert_envelope(await client.get(f"/api/v1/documents/{document['id']}", headers=other_account.headers), 404)
    assert_envelope(await client.post(f"/api/v1/documents/{document['id']}/process", headers=other_account.headers, json={"segment_type": "faq"}), 404)
    assert_envelope(await client.get(f"/api/v1/segments/{segment_id}", headers=other_account.headers), 404)
    assert (await client.get(f"/api/v1/documents/{document['id']}", headers=account.headers)).json()["current_version"] == 1
