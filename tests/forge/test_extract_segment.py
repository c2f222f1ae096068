"""The plain functions under the processing job: format sniffing, text extraction per
format, and each segment type on realistic text, with max_length and overlap."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.forge.samples import CHAT, CONTRACT, CRM, FAQ, LAW, encrypted_pdf, make_docx, make_pdf, zip_bomb_docx
from vur.forge.extract import ExtractionError, check_docx, decode_text, extract, sniff_format
from vur.forge.segment import SegmentationError, segment, split_long


def write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (make_pdf([["x"]])[:64], "pdf"),
        (make_docx(["x"])[:64], "docx"),
        ("Contrato de serviços.\n".encode("latin-1"), "txt"),
        (FAQ.encode(), "md"),
        ("\ufeffTexto com BOM".encode("utf-8"), "txt"),
    ],
)
def test_formats_come_from_the_bytes(head: bytes, expected: str) -> None:
    assert sniff_format(head) == expected


@pytest.mark.parametrize(
    ("head", "what"),
    [
        (b"\x7fELF\x02\x01\x01\x00" + bytes(120), "ELF executable"),
        (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00", "Windows executable"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "PNG image"),
        (bytes(range(256)), "binary"),
        (b"", "empty"),
    ],
)
def test_other_files_are_refused_by_name(head: bytes, what: str) -> None:
    with pytest.raises(ExtractionError) as caught:
        sniff_format(head)
    assert what in caught.value.reason


def test_text_that_starts_like_mz_is_still_text() -> None:
    assert sniff_format(b"MZ Consultoria - relatorio anual\n") == "txt"


def test_latin1_and_utf8_text_decode_alike() -> None:
    text = CONTRACT.replace("–", "-")
    assert decode_text(text.encode("utf-8")) == text
    assert decode_text(text.encode("latin-1")) == text
    assert decode_text(text.encode("cp1252")) == text


def test_pdf_text_page_by_page(tmp_path: Path) -> None:
    path = write(tmp_path, "a.pdf", make_pdf([["Primeira página, com acentuação.", "Ainda a página um."], ["Página dois (fim)."]]))
    extracted = extract(path, "pdf")
    assert extracted.pages == 2
    assert extracted.text.startswith("Primeira página, com acentuação.")
    assert extracted.text[extracted.page_starts[1] :] == "Página dois (fim)."


def test_encrypted_pdf_is_named(tmp_path: Path) -> None:
    with pytest.raises(ExtractionError, match="encrypted"):
        extract(write(tmp_path, "e.pdf", encrypted_pdf([["sigiloso"]])), "pdf")


def test_pdf_without_text_says_so(tmp_path: Path) -> None:
    with pytest.raises(ExtractionError, match="no text"):
        extract(write(tmp_path, "scan.pdf", make_pdf([[], []])), "pdf")


def test_damaged_pdf(tmp_path: Path) -> None:
    with pytest.raises(ExtractionError, match="damaged"):
        extract(write(tmp_path, "d.pdf", b"%PDF-1.4\n1 0 obj garbage"), "pdf")


def test_docx_paragraphs_and_tables_in_order(tmp_path: Path) -> None:
    content = make_docx(["Relatório de atendimentos", "Clientes atendidos em março."], [["Cliente", "Plano"], ["Ana", "Ouro"], ["João", "Prata"]], ["Fim do relatório."])
    text = extract(write(tmp_path, "r.docx", content), "docx").text
    assert text == "Relatório de atendimentos\n\nClientes atendidos em março.\n\nCliente: Ana | Plano: Ouro\nCliente: João | Plano: Prata\n\nFim do relatório."


def test_docx_zip_bombs_are_refused_before_expansion(tmp_path: Path) -> None:
    bomb = write(tmp_path, "bomb.docx", zip_bomb_docx())
    with pytest.raises(ExtractionError, match="compressed") as caught:
        extract(bomb, "docx")
    assert "zip bomb" in caught.value.details["file"]
    # The total declared size is checked too, whatever the ratio.
    with pytest.raises(ExtractionError, match="expand"):
        check_docx(write(tmp_path, "big.docx", make_docx(["texto " * 1000])), max_expanded=1000)


def test_zip_that_is_not_a_word_document(tmp_path: Path) -> None:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
    with pytest.raises(ExtractionError, match="not a Word document"):
        check_docx(write(tmp_path, "x.docx", buffer.getvalue()))


def test_text_files_are_normalised(tmp_path: Path) -> None:
    raw = "Linha  um\r\n\r\n\r\n\r\nLinha\tdois \x00\r\n".encode("latin-1")
    assert extract(write(tmp_path, "t.txt", raw), "txt").text == "Linha um\n\nLinha dois"


# --- segmentation ------------------------------------------------------------------------


def test_paragraphs_take_their_titles_and_pages() -> None:
    text = "Introdução\n\nPrimeiro parágrafo do texto.\n\nSegundo parágrafo, mais curto.\n\nTerceiro, na página dois."
    pieces = segment(text, "paragraph", max_length=500, page_starts=[0, text.index("Terceiro")])
    assert [p.content for p in pieces] == ["Introdução\nPrimeiro parágrafo do texto.", "Segundo parágrafo, mais curto.", "Terceiro, na página dois."]
    assert [p.metadata["page"] for p in pieces] == [1, 1, 2]


def test_contract_clauses() -> None:
    pieces = segment(CONTRACT, "clause", max_length=1000)
    numbers = [p.metadata["number"] for p in pieces]
    assert numbers == [None, "1.1", "1.2", "2.1", "2.2", "Cláusula 3ª"]
    assert pieces[0].metadata["kind"] == "preamble" and pieces[0].content.startswith("CONTRATO DE PRESTAÇÃO")
    # A clause heading alone is the title of the clause after it, not a segment.
    assert pieces[1].content.startswith("CLÁUSULA PRIMEIRA – DO OBJETO\n1.1 O presente contrato")
    assert pieces[1].metadata["title"] == "CLÁUSULA PRIMEIRA – DO OBJETO"
    assert pieces[5].content == "Cláusula 3ª - Da vigência\nO contrato vigora por doze meses a contar da assinatura, renovável por igual período."


def test_law_articles_keep_their_paragraphs() -> None:
    pieces = segment(LAW, "clause", max_length=1000)
    assert [p.metadata["number"] for p in pieces] == [None, "Art. 1º", "Art. 2º", "Art. 3º"]
    assert pieces[2].content.endswith("§ 2º O descumprimento sujeita o infrator a multa.")


def test_clauses_missing_is_a_reason() -> None:
    with pytest.raises(SegmentationError, match="No clauses found"):
        segment("Um texto corrido, sem cláusulas numeradas.", "clause", max_length=500)


def test_whatsapp_turns() -> None:
    pieces = segment(CHAT, "chat_message", max_length=1000)
    assert [p.metadata["speaker"] for p in pieces] == ["Ana", "Atendente VR", "Ana", "Atendente VR"]
    assert pieces[0].content == "Ana: Oi, meu cartão foi recusado no mercado\nJá tentei duas vezes"
    assert pieces[0].metadata == {"speaker": "Ana", "timestamp": "12/03/2024 10:15", "messages": 2}
    # A line without a timestamp continues the message above it.
    assert pieces[1].content.endswith("Pode me informar os quatro últimos dígitos?")


def test_android_export_and_plain_transcripts() -> None:
    android = "12/03/2024 10:15 - Ana: Bom dia\n12/03/2024 10:16 - Suporte: Bom dia! Como posso ajudar?\n"
    assert [(p.metadata["speaker"], p.metadata["timestamp"]) for p in segment(android, "chat_message", max_length=500)] == [("Ana", "12/03/2024 10:15"), ("Suporte", "12/03/2024 10:16")]
    plain = "Cliente: Quero cancelar meu plano.\nAtendente: Posso saber o motivo?\nCliente: Mudei de emprego.\n"
    assert [p.content for p in segment(plain, "chat_message", max_length=500)] == ["Cliente: Quero cancelar meu plano.", "Atendente: Posso saber o motivo?", "Cliente: Mudei de emprego."]


def test_faq_pairs() -> None:
    pieces = segment(FAQ, "faq", max_length=1000)
    assert [p.metadata["question"] for p in pieces] == ["Como desbloqueio meu cartão?", "Posso usar o cartão no exterior?", "Como consulto meu saldo?"]
    assert pieces[0].content == "Como desbloqueio meu cartão?\nAcesse o aplicativo, toque em Cartões e depois em Desbloquear.\nO desbloqueio leva poucos minutos."
    prefixed = "P: Qual o prazo de entrega?\nR: Cinco dias úteis.\nP: Há taxa de entrega?\nR: Não há.\n"
    assert [p.content for p in segment(prefixed, "faq", max_length=500)] == ["Qual o prazo de entrega?\nCinco dias úteis.", "Há taxa de entrega?\nNão há."]


def test_long_faq_answers_repeat_the_question() -> None:
    answer = " ".join(f"Passo {i}: abra o menu e confirme a opção escolhida." for i in range(20))
    pieces = segment(f"Como faço o cadastro?\n{answer}", "faq", max_length=300, overlap=40)
    assert len(pieces) > 1
    assert all(p.content.startswith("Como faço o cadastro?\n") and len(p.content) <= 300 for p in pieces)


def test_crm_records() -> None:
    pieces = segment(CRM, "crm_record", max_length=1000)
    assert [p.metadata["fields"]["Cliente"] for p in pieces] == ["Ana Souza", "João Lima", "Maria Alves"]
    assert pieces[1].metadata["fields"]["Assunto"] == "Segunda via" and pieces[1].metadata["record"] == 2
    separated = "Ana - ligou sobre saldo\n-----\nJoão - pediu segunda via\n-----\nMaria - elogio ao atendimento\n"
    assert [p.content for p in segment(separated, "crm_record", max_length=500)] == ["Ana - ligou sobre saldo", "João - pediu segunda via", "Maria - elogio ao atendimento"]
    exported = "nome;plano;cidade\nAna;Ouro;São Paulo\nJoão;Prata;Recife\n"
    assert [p.content for p in segment(exported, "crm_record", max_length=500)] == ["nome: Ana\nplano: Ouro\ncidade: São Paulo", "nome: João\nplano: Prata\ncidade: Recife"]
    # A field past the csv module's limit (128 KiB) is no export of short fields: the records are read otherwise.
    huge = f'nome;nota\nAna;"{"x" * 200_000}"\n\nJoão;curta\n'
    assert len(segment(huge, "crm_record", max_length=500)) >= 2


def test_no_chat_or_faq_is_a_reason() -> None:
    with pytest.raises(SegmentationError, match="No chat messages"):
        segment("um texto qualquer\nsem falas", "chat_message", max_length=500)
    with pytest.raises(SegmentationError, match="No question/answer pairs"):
        segment("Nenhuma pergunta aqui.", "faq", max_length=500)


# --- max_length and overlap -------------------------------------------------------------

SENTENCES = " ".join(f"Esta é a frase número {i} do documento longo." for i in range(80))


@pytest.mark.parametrize(("max_length", "overlap"), [(200, 0), (200, 50), (500, 100), (120, 60), (1000, 0)])
def test_parts_fit_and_overlap(max_length: int, overlap: int) -> None:
    parts = split_long(SENTENCES, max_length, overlap)
    assert len(parts) > 1 and all(0 < len(part) <= max_length for part in parts)
    for before, after in zip(parts, parts[1:], strict=False):
        shared = max((n for n in range(1, overlap + 1) if before.endswith(after[:n])), default=0)
        if overlap:
            assert 0 < shared <= overlap, (before, after)
        else:
            assert SENTENCES.index(after) >= SENTENCES.index(before) + len(before)
    # Nothing is lost: every sentence is in some part.
    assert all(f"frase número {i} do" in " ".join(parts) for i in range(80))


def test_parts_end_on_sentences_when_they_can() -> None:
    parts = split_long(SENTENCES, 300, 60)
    assert all(part.endswith(".") for part in parts)
    assert all(part.startswith("Esta é a frase") for part in parts)


def test_a_word_longer_than_a_part_is_cut() -> None:
    parts = split_long("a" * 450, 200, 20)
    assert [len(p) for p in parts] == [200, 200, 50] and "".join(parts) == "a" * 450


def test_segment_marks_the_parts() -> None:
    pieces = segment(SENTENCES, "paragraph", max_length=400, overlap=50)
    assert len(pieces) > 1
    assert [p.metadata["part"] for p in pieces] == list(range(1, len(pieces) + 1))
    assert {p.metadata["parts"] for p in pieces} == {len(pieces)}
    with pytest.raises(ValueError):
        segment(SENTENCES, "paragraph", max_length=100, overlap=100)
