"""Model bundles: one trained version as a zip that another workspace of this VUR
instance can load.

A bundle holds `manifest.json` (the model's description and the SHA-256 of each
artifact), the artifacts under `files/`, and `signature`: an HMAC-SHA256 of the
manifest under the instance's secret key. Loading checks the signature before reading
anything else, then every file against its digest, so a bundle that was altered, or
signed by another instance, is refused before any of its content is used.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
import zipfile
from dataclasses import dataclass
from typing import Any

from vur.registry.exceptions import InvalidBundle

FORMAT = "vur-model-bundle/1"
# The artifacts a version folder may hold: plain names, no folders.
ARTIFACT_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")


@dataclass
class Bundle:
    manifest: dict[str, Any]
    files: dict[str, bytes]


def sign(content: bytes, secret: str) -> str:
    """The HMAC-SHA256 of `content` under the instance's secret key, in hex. Also signs
    pipeline documents (vur.pipelines)."""
    return hmac.new(secret.encode(), content, hashlib.sha256).hexdigest()


def signature_matches(content: bytes, given: str, secret: str) -> bool:
    # As bytes: compare_digest refuses text with non-ASCII characters (a forged signature may hold any).
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), sign(content, secret).encode())


def write_bundle(description: dict[str, Any], files: dict[str, bytes], secret: str) -> bytes:
    manifest = json.dumps({"format": FORMAT, **description, "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}}, sort_keys=True).encode()
    buffer = io.BytesIO()
    entries = {"manifest.json": manifest, "signature": sign(manifest, secret).encode(), **{f"files/{name}": data for name, data in files.items()}}
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            # A fixed timestamp: the same version exports to the same bytes.
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def read_bundle(data: bytes, secret: str, max_unpacked_bytes: int) -> Bundle:
    """The verified content of a bundle; InvalidBundle (422) says what is wrong."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise InvalidBundle("Not a model bundle", {"file": "expected a zip exported by GET /api/v1/models/{id}/export"}) from None
    with archive:
        entries = {info.filename: info for info in archive.infolist()}
        if sum(info.file_size for info in entries.values()) > max_unpacked_bytes:
            raise InvalidBundle("The bundle unpacks to more than the upload limit", {"file": f"at most {max_unpacked_bytes:,} bytes unpacked"})
        if "manifest.json" not in entries or "signature" not in entries:
            raise InvalidBundle("Not a model bundle", {"file": "manifest.json or signature is missing"})
        manifest_bytes = archive.read("manifest.json")
        given = archive.read("signature").decode("ascii", "replace").strip()
        if not signature_matches(manifest_bytes, given, secret):
            raise InvalidBundle("The bundle's signature does not match", {"signature": "the bundle was altered, or exported by another VUR instance"})
        manifest = json.loads(manifest_bytes)
        if manifest.get("format") != FORMAT:
            raise InvalidBundle("This bundle's format is not one this VUR reads", {"format": f"expected {FORMAT}, got {manifest.get('format')!r}"})
        files = {}
        for name, digest in manifest["files"].items():
            if not ARTIFACT_NAME.match(name) or f"files/{name}" not in entries:
                raise InvalidBundle("The bundle is incomplete", {"files": f"'{name}' is missing"})
            content = archive.read(f"files/{name}")
            if not hmac.compare_digest(hashlib.sha256(content).hexdigest(), digest):
                raise InvalidBundle("A file of the bundle was altered", {"files": name})
            files[name] = content
        unexpected = set(entries) - {"manifest.json", "signature"} - {f"files/{name}" for name in files}
        if unexpected:
            raise InvalidBundle("The bundle holds files its manifest does not list", {"files": sorted(unexpected)[:5]})
    return Bundle(manifest, files)
