"""Workspace members and roles: admins manage members, members write, viewers only read,
a workspace always keeps an active admin, and a deactivated member is locked out."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import Account, add_member, assert_envelope, hourly_csv, register

pytestmark = pytest.mark.anyio

MEMBERS = "/api/v1/workspace/members"


def member_url(user_id: str) -> str:
    return f"{MEMBERS}/{user_id}"


def new_member_body(role: str | None = "member") -> dict:
    body = {"email": f"m-{uuid.uuid4().hex[:12]}@example.com", "name": "New Member", "password": "member-password-1"}
    if role is not None:
        body["role"] = role
    return body


async def upload_and_train(client: httpx.AsyncClient, owner: Account, tmp_path: Path) -> tuple[str, str, str]:
    """(dataset_id, model_id, job_id) created by `owner`."""
    path = hourly_csv(tmp_path / f"{uuid.uuid4().hex}.csv", hours=24 * 5)
    with path.open("rb") as handle:
        upload = await client.post("/api/v1/datasets/upload", headers=owner.headers, files={"file": ("series.csv", handle, "text/csv")})
    assert upload.status_code == 201, upload.text
    dataset_id = upload.json()["dataset_id"]
    train = await client.post(
        "/api/v1/models/train",
        headers=owner.headers,
        json={"dataset_id": dataset_id, "algorithm": "seasonal_naive", "hyperparameters": {"season_length": 24}, "horizon": 24},
    )
    assert train.status_code == 202, train.text
    return dataset_id, train.json()["model_id"], train.json()["job_id"]


# --- managing members ------------------------------------------------------------------------


async def test_admin_adds_members_with_roles(client: httpx.AsyncClient, account: Account) -> None:
    added = {}
    for role in ("admin", "member", "viewer"):
        body = new_member_body(role)
        response = await client.post(MEMBERS, headers=account.headers, json=body)
        assert response.status_code == 201, response.text
        member = response.json()
        assert set(member) == {"id", "email", "name", "role", "is_active", "created_at"}
        assert member["role"] == role and member["is_active"] is True and member["email"] == body["email"]
        added[member["id"]] = (role, body)

    listing = await client.get(MEMBERS, headers=account.headers)
    assert listing.status_code == 200
    by_id = {m["id"]: m for m in listing.json()}
    assert by_id[account.user_id]["role"] == "admin"
    for user_id, (role, _) in added.items():
        assert by_id[user_id]["role"] == role
    assert len(by_id) == 4

    # The new account logs in to the admin's workspace, not a new one.
    user_id, (role, body) = next(iter(added.items()))
    login = await client.post("/api/v1/auth/login", json={"email": body["email"], "password": body["password"]})
    assert login.status_code == 200
    assert login.json()["user"]["workspace"]["id"] == account.workspace_id
    assert login.json()["user"]["role"] == role


async def test_default_role_is_member(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.post(MEMBERS, headers=account.headers, json=new_member_body(None))
    assert response.status_code == 201, response.text
    assert response.json()["role"] == "member"


async def test_member_list_is_scoped_to_the_workspace(client: httpx.AsyncClient, account: Account, other_account: Account) -> None:
    await add_member(client, account, "viewer")
    ids = {m["id"] for m in (await client.get(MEMBERS, headers=other_account.headers)).json()}
    assert ids == {other_account.user_id}


async def test_add_member_with_taken_email_is_409(client: httpx.AsyncClient, account: Account, other_account: Account) -> None:
    body = {**new_member_body(), "email": other_account.email.upper()}
    response = await client.post(MEMBERS, headers=account.headers, json=body)
    assert "email" in assert_envelope(response, 409)["details"]


@pytest.mark.parametrize(
    "patch, field",
    [({"role": "owner"}, "role"), ({"email": "not-an-email"}, "email"), ({"password": "short"}, "password"), ({"is_superuser": True}, "is_superuser")],
)
async def test_add_member_validation(client: httpx.AsyncClient, account: Account, patch: dict, field: str) -> None:
    response = await client.post(MEMBERS, headers=account.headers, json={**new_member_body(), **patch})
    assert field in assert_envelope(response, 422)["details"]


async def test_admin_changes_a_role(client: httpx.AsyncClient, account: Account) -> None:
    viewer = await add_member(client, account, "viewer")
    response = await client.patch(member_url(viewer.user_id), headers=account.headers, json={"role": "admin"})
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "admin"
    # The promoted account can now manage members, with its existing token.
    assert (await client.post(MEMBERS, headers=viewer.headers, json=new_member_body("viewer"))).status_code == 201


async def test_patch_unknown_member_is_404(client: httpx.AsyncClient, account: Account) -> None:
    assert_envelope(await client.patch(member_url(str(uuid.uuid4())), headers=account.headers, json={"role": "viewer"}), 404)


async def test_patch_rejects_unknown_fields(client: httpx.AsyncClient, account: Account) -> None:
    member = await add_member(client, account, "member")
    response = await client.patch(member_url(member.user_id), headers=account.headers, json={"email": "x@example.com"})
    assert "email" in assert_envelope(response, 422)["details"]


# --- the last admin ----------------------------------------------------------------------------


async def test_last_admin_cannot_be_demoted(client: httpx.AsyncClient, account: Account) -> None:
    await add_member(client, account, "member")
    for change in ({"role": "member"}, {"role": "viewer"}, {"is_active": False}):
        assert_envelope(await client.patch(member_url(account.user_id), headers=account.headers, json=change), 409)
    me = (await client.get("/api/v1/auth/me", headers=account.headers)).json()
    assert me["role"] == "admin"


async def test_an_admin_can_be_demoted_while_another_remains(client: httpx.AsyncClient, account: Account) -> None:
    second = await add_member(client, account, "admin")
    response = await client.patch(member_url(account.user_id), headers=second.headers, json={"role": "member"})
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "member"
    # Now `second` is the last admin.
    assert_envelope(await client.patch(member_url(second.user_id), headers=second.headers, json={"role": "viewer"}), 409)
    assert_envelope(await client.patch(member_url(second.user_id), headers=second.headers, json={"is_active": False}), 409)


async def test_a_deactivated_admin_does_not_count_as_the_remaining_admin(client: httpx.AsyncClient, account: Account) -> None:
    second = await add_member(client, account, "admin")
    assert (await client.patch(member_url(second.user_id), headers=account.headers, json={"is_active": False})).status_code == 200
    assert_envelope(await client.patch(member_url(account.user_id), headers=account.headers, json={"role": "member"}), 409)


async def test_an_inactive_admin_can_be_demoted(client: httpx.AsyncClient, account: Account) -> None:
    # Demoting an admin that is already deactivated removes no active admin.
    second = await add_member(client, account, "admin")
    assert (await client.patch(member_url(second.user_id), headers=account.headers, json={"is_active": False})).status_code == 200
    response = await client.patch(member_url(second.user_id), headers=account.headers, json={"role": "viewer"})
    assert response.status_code == 200, response.text
    assert (response.json()["role"], response.json()["is_active"]) == ("viewer", False)


async def test_reactivating_an_inactive_admin_is_allowed(client: httpx.AsyncClient, account: Account) -> None:
    second = await add_member(client, account, "admin")
    assert (await client.patch(member_url(second.user_id), headers=account.headers, json={"is_active": False})).status_code == 200
    response = await client.patch(member_url(second.user_id), headers=account.headers, json={"is_active": True})
    assert response.status_code == 200, response.text
    assert (await client.post("/api/v1/auth/login", json={"email": second.email, "password": second.password})).status_code == 200


# --- deactivation ------------------------------------------------------------------------------


async def test_deactivated_member_is_locked_out(client: httpx.AsyncClient, account: Account) -> None:
    member = await add_member(client, account, "member")
    assert (await client.get("/api/v1/auth/me", headers=member.headers)).status_code == 200

    response = await client.patch(member_url(member.user_id), headers=account.headers, json={"is_active": False})
    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is False

    for call in (
        client.get("/api/v1/auth/me", headers=member.headers),
        client.get("/api/v1/models", headers=member.headers),
        client.post("/api/v1/auth/refresh", json={"refresh_token": member.refresh_token}),
        client.post("/api/v1/auth/login", json={"email": member.email, "password": member.password}),
    ):
        response = await call
        assert_envelope(response, 401)
        assert response.headers.get("WWW-Authenticate") == "Bearer"

    # Still listed, as inactive.
    listed = {m["id"]: m for m in (await client.get(MEMBERS, headers=account.headers)).json()}
    assert listed[member.user_id]["is_active"] is False

    # Reactivated, it can log in again (its old refresh token stays revoked).
    assert (await client.patch(member_url(member.user_id), headers=account.headers, json={"is_active": True})).status_code == 200
    assert (await client.post("/api/v1/auth/login", json={"email": member.email, "password": member.password})).status_code == 200
    assert_envelope(await client.post("/api/v1/auth/refresh", json={"refresh_token": member.refresh_token}), 401)


# --- what each role may do ----------------------------------------------------------------------


async def test_viewer_cannot_write(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    dataset_id, model_id, job_id = await upload_and_train(client, account, tmp_path)
    viewer = await add_member(client, account, "viewer")
    other = await add_member(client, account, "member")

    csv = hourly_csv(tmp_path / "viewer.csv", hours=48).read_bytes()
    writes = [
        ("POST", "/api/v1/models/train", {"json": {"dataset_id": dataset_id, "algorithm": "seasonal_naive", "hyperparameters": {"season_length": 24}}}),
        ("POST", MEMBERS, {"json": new_member_body("viewer")}),
        ("PATCH", member_url(other.user_id), {"json": {"role": "viewer"}}),
        ("PATCH", member_url(viewer.user_id), {"json": {"role": "admin"}}),
        ("POST", f"/api/v1/jobs/{job_id}/cancel", {}),
        ("POST", "/api/v1/datasets/upload", {"files": {"file": ("v.csv", csv, "text/csv")}}),
    ]
    for method, url, kwargs in writes:
        response = await client.request(method, url, headers=viewer.headers, **kwargs)
        body = assert_envelope(response, 403)
        assert body["error"], (method, url)

    # Nothing was changed by those attempts.
    models = (await client.get("/api/v1/models", headers=account.headers)).json()
    assert [m["id"] for m in models] == [model_id]
    datasets = (await client.get("/api/v1/datasets", headers=account.headers)).json()
    assert [d["id"] for d in datasets] == [dataset_id]
    assert (await client.get(f"/api/v1/jobs/{job_id}", headers=account.headers)).json()["status"] != "cancelled"
    roles = {m["id"]: m["role"] for m in (await client.get(MEMBERS, headers=account.headers)).json()}
    assert roles[other.user_id] == "member" and roles[viewer.user_id] == "viewer"
    assert len(roles) == 3


# POSTs that only read: a viewer may call them.
READING_POSTS = {"/api/v1/datasets/{dataset_id}/validate"}
# A viewer may still manage its own session and profile.
OWN_ACCOUNT = re.compile(r"^/api/v1/auth/")


async def test_every_write_route_refuses_a_viewer(client: httpx.AsyncClient, account: Account) -> None:
    """Every POST, PUT, PATCH and DELETE in the API description answers a viewer 403, before
    looking up what it names or reading its body: a route added without the writer's
    dependency fails here."""
    viewer = await add_member(client, account, "viewer")
    spec = (await client.get("/openapi.json")).json()
    # Path parameters as the routes take them: seed 003's machine numbers, a step's name, a provider.
    names = {"machine_id": "1", "step": "upload", "provider": "openai"}
    checked = 0
    for path, item in spec["paths"].items():
        for method in item.keys() & {"post", "put", "patch", "delete"}:
            if path in READING_POSTS or OWN_ACCOUNT.match(path):
                continue
            seed_path = not path.startswith("/api/")
            url = re.sub(r"{(\w+)}", lambda m: names[m.group(1)] if seed_path or m.group(1) in ("step", "provider") else str(uuid.uuid4()), path)
            response = await client.request(method.upper(), url, headers=viewer.headers, json={})
            assert response.status_code == 403, (method, path, response.status_code, response.text[:200])
            checked += 1
    assert checked > 50


async def test_viewer_can_read(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    dataset_id, model_id, job_id = await upload_and_train(client, account, tmp_path)
    viewer = await add_member(client, account, "viewer")
    for url in (
        "/api/v1/auth/me",
        MEMBERS,
        "/api/v1/models",
        f"/api/v1/models/{model_id}",
        f"/api/v1/models/{model_id}/training/status",
        "/api/v1/models/algorithms",
        "/api/v1/datasets",
        f"/api/v1/datasets/{dataset_id}",
        "/api/v1/jobs",
        f"/api/v1/jobs/{job_id}",
    ):
        response = await client.get(url, headers=viewer.headers)
        assert response.status_code == 200, (url, response.text)
    # Its own profile is not a workspace write.
    assert (await client.put("/api/v1/auth/profile", headers=viewer.headers, json={"name": "Viewer V"})).status_code == 200


async def test_member_writes_but_does_not_manage_members(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    member = await add_member(client, account, "member")
    dataset_id, model_id, job_id = await upload_and_train(client, member, tmp_path)
    assert (await client.get(f"/api/v1/models/{model_id}", headers=account.headers)).status_code == 200
    assert (await client.get(f"/api/v1/datasets/{dataset_id}", headers=account.headers)).status_code == 200

    assert_envelope(await client.post(MEMBERS, headers=member.headers, json=new_member_body("viewer")), 403)
    assert_envelope(await client.patch(member_url(member.user_id), headers=member.headers, json={"role": "admin"}), 403)
    assert_envelope(await client.patch(member_url(account.user_id), headers=member.headers, json={"is_active": False}), 403)
    assert (await client.get(MEMBERS, headers=member.headers)).status_code == 200


async def test_members_endpoints_require_authentication(client: httpx.AsyncClient, account: Account) -> None:
    for method, url, body in (("GET", MEMBERS, None), ("POST", MEMBERS, new_member_body()), ("PATCH", member_url(account.user_id), {"role": "viewer"})):
        response = await client.request(method, url, json=body)
        assert_envelope(response, 401)
        assert response.headers.get("WWW-Authenticate") == "Bearer"


async def test_admin_of_another_workspace_cannot_touch_members(client: httpx.AsyncClient, account: Account) -> None:
    intruder = await register(client)
    victim = await add_member(client, account, "member")
    for change in ({"role": "viewer"}, {"is_active": False}):
        assert_envelope(await client.patch(member_url(victim.user_id), headers=intruder.headers, json=change), 404)
        assert_envelope(await client.patch(member_url(account.user_id), headers=intruder.headers, json=change), 404)
    assert (await client.get("/api/v1/auth/me", headers=victim.headers)).json()["role"] == "member"
    assert (await client.get("/api/v1/auth/me", headers=account.headers)).json()["role"] == "admin"
