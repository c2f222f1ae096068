"""Real documents for the forge's tests: PDFs written by hand (standard fonts, so that
any PDF library reads their text), DOCX files written by python-docx, and realistic
texts for every segment type."""

from __future__ import annotations

import io
import zipfile

CONTRACT = """CONTRATO DE PRESTAÇÃO DE SERVIÇOS DE MANUTENÇÃO

Pelo presente instrumento particular, de um lado VR Benefícios S.A., doravante CONTRATANTE, e de outro Predial Serviços Ltda., doravante CONTRATADA, têm entre si justo e contratado o seguinte.

CLÁUSULA PRIMEIRA – DO OBJETO
1.1 O presente contrato tem por objeto a prestação de serviços de manutenção predial preventiva e corretiva.
1.2 Os serviços serão prestados nas dependências da CONTRATANTE, em horário comercial.

CLÁUSULA SEGUNDA – DO PREÇO
2.1 Pelos serviços, a CONTRATANTE pagará o valor mensal de R$ 1.500,00 (mil e quinhentos reais).
2.2 O pagamento será feito até o quinto dia útil de cada mês.

Cláusula 3ª - Da vigência
O contrato vigora por doze meses a contar da assinatura, renovável por igual período.
"""

LAW = """LEI Nº 0000, DE 1º DE JANEIRO DE 2024
Dispõe sobre o uso de vales de alimentação.

Art. 1º Esta Lei regula o uso do vale-alimentação.
Art. 2º O benefício destina-se exclusivamente à compra de gêneros alimentícios.
§ 1º É vedado o saque em dinheiro.
§ 2º O descumprimento sujeita o infrator a multa.
Art. 3º Esta Lei entra em vigor na data de sua publicação.
"""

CHAT = """[12/03/2024 10:14] Messages and calls are end-to-end encrypted.
[12/03/2024 10:15] Ana: Oi, meu cartão foi recusado no mercado
[12/03/2024 10:15] Ana: Já tentei duas vezes
[12/03/2024 10:16] Atendente VR: Olá, Ana! Vou verificar o seu cartão.
Pode me informar os quatro últimos dígitos?
[12/03/2024 10:17] Ana: 4321
[12/03/2024 10:19] Atendente VR: O cartão estava bloqueado por segurança. Já desbloqueei.
"""

FAQ = """# Perguntas frequentes

## Como desbloqueio meu cartão?
Acesse o aplicativo, toque em Cartões e depois em Desbloquear.
O desbloqueio leva poucos minutos.

## Posso usar o cartão no exterior?
Não. O cartão é aceito apenas em estabelecimentos credenciados no Brasil.

## Como consulto meu saldo?
Pelo aplicativo ou pelo site, na área do beneficiário.
"""

CRM = """Cliente: Ana Souza
Data: 12/03/2024
Canal: WhatsApp
Assunto: Cartão recusado
Notas: Cartão bloqueado por segurança; desbloqueado pelo atendente.
Cliente: João Lima
Data: 13/03/2024
Canal: Telefone
Assunto: Segunda via
Notas: Nova via enviada ao endereço cadastrado.
Cliente: Maria Alves
Data: 14/03/2024
Canal: E-mail
Assunto: Saldo
Notas: Orientada a consultar o saldo pelo aplicativo.
"""


def _pdf_string(text: str) -> bytes:
    raw = text.encode("cp1252")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def make_pdf(pages: list[list[str]]) -> bytes:
    """A PDF with one page per list of lines, in Helvetica (WinAnsi, so Portuguese
    accents survive). A page without lines has no text at all, only a drawn box."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]  # the page tree is filled in below
    font_id = 3
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    kids = []
    for lines in pages:
        if lines:
            body = b"BT /F1 11 Tf 14 TL 50 800 Td " + b" ".join(_pdf_string(line) + b" Tj T*" for line in lines) + b" ET"
        else:
            body = b"0 0 1 RG 100 100 200 200 re S"
        objects.append(b"<< /Length %d >>\nstream\n" % len(body) + body + b"\nendstream")
        content_id = len(objects)
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>" % (font_id, content_id))
        kids.append(len(objects))
    objects[1] = b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % k for k in kids) + b"] /Count %d >>" % len(kids)
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def encrypted_pdf(pages: list[list[str]]) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(pages))))
    writer.encrypt(user_password="segredo", owner_password="dono", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_docx(paragraphs: list[str], table: list[list[str]] | None = None, after: list[str] | None = None) -> bytes:
    import docx

    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    for text in after or []:
        document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def zip_bomb_docx(expanded_bytes: int = 20 * 1_048_576) -> bytes:
    """A zip that claims to be a Word document, with one tiny-compressed huge entry."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
        with archive.open("word/media/bomb.bin", "w", force_zip64=True) as entry:
            block = b"\x00" * 1_048_576
            for _ in range(expanded_bytes // len(block)):
                entry.write(block)
    return out.getvalue()
