"""Accounts and tokens over HTTP: register, login (JSON and OAuth2 form), refresh rotation
and reuse detection, logout, /me, profile changes, login throttling, and every way an
access token can be wrong."""

from __future__ import annotations

import base64
import json
import time
import uuid

import httpx
import jwt
import pytest

from tests.conftest import Account, add_member, assert_envelope, register
from vur.core.db import Database
from vur.identity.schemas import TokenResponse
from vur.settings import Settings

pytestmark = pytest.mark.anyio

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"
PROFILE = "/api/v1/auth/profile"


def fresh_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


def assert_token_pair(body: dict) -> None:
    assert body["token_type"] == "bearer"
    assert isinstance(body["access_token"], str) and body["access_token"].count(".") == 2
    assert isinstance(body["refresh_token"], str) and len(body["refresh_token"]) >= 20
    assert body["token"] == body["access_token"]
    assert body["expires_in"] > 0


def assert_unauthorized(response: httpx.Response) -> dict:
    body = assert_envelope(response, 401)
    assert response.headers.get("WWW-Authenticate") == "Bearer"
    return body


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post(LOGIN, json={"email": email, "password": password})


# --- register ---------------------------------------------------------------------------


async def test_register_returns_tokens_user_and_workspace(client: httpx.AsyncClient) -> None:
    email = fresh_email()
    response = await client.post(REGISTER, json={"email": email, "password": "correct-horse-battery", "name": "Ana Lima", "workspace_name": "Demand"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert_token_pair(body)
    user = body["user"]
    assert user["email"] == email
    assert user["name"] == "Ana Lima"
    assert user["role"] == "admin"
    assert user["is_superuser"] is False
    assert user["workspace"]["name"] == "Demand"
    uuid.UUID(user["id"])
    uuid.UUID(user["workspace"]["id"])
    assert not {"password", "password_hash"} & set(user)

    # The access token works at once.
    me = await client.get(ME, headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["id"] == user["id"]


async def test_register_gives_every_account_its_own_workspace(client: httpx.AsyncClient) -> None:
    first = await register(client)
    second = await register(client)
    assert first.workspace_id != second.workspace_id


async def test_register_duplicate_email_is_409(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.post(REGISTER, json={"email": account.email, "password": "another-password", "name": "Dup"})
    body = assert_envelope(response, 409)
    assert "email" in body["details"]


async def test_register_email_is_case_insensitive(client: httpx.AsyncClient) -> None:
    local = f"Mixed-{uuid.uuid4().hex[:10]}"
    created = await register(client, email=f"{local}@Example.COM")
    # Stored lower-cased.
    me = await client.get(ME, headers=created.headers)
    assert me.json()["email"] == f"{local}@example.com".lower()
    # The same address in other case is the same account.
    duplicate = await client.post(REGISTER, json={"email": f"{local.lower()}@example.com", "password": "another-password", "name": "Dup"})
    assert_envelope(duplicate, 409)
    duplicate_upper = await client.post(REGISTER, json={"email": f"{local.upper()}@EXAMPLE.COM", "password": "another-password", "name": "Dup"})
    assert_envelope(duplicate_upper, 409)
    # And login accepts any case.
    response = await login(client, f"{local.upper()}@example.com", created.password)
    assert response.status_code == 200, response.text
    assert response.json()["user"]["id"] == created.user_id


@pytest.mark.parametrize(
    "body, field",
    [
        ({"email": "not-an-email", "password": "correct-horse-battery", "name": "X"}, "email"),
        ({"email": "short@example.com", "password": "short", "name": "X"}, "password"),
        ({"email": "noname@example.com", "password": "correct-horse-battery", "name": ""}, "name"),
        ({"email": "extra@example.com", "password": "correct-horse-battery", "name": "X", "role": "admin"}, "role"),
    ],
)
async def test_register_validation(client: httpx.AsyncClient, body: dict, field: str) -> None:
    response = await client.post(REGISTER, json=body)
    details = assert_envelope(response, 422)["details"]
    assert field in details, details


# --- login ------------------------------------------------------------------------------


async def test_login_with_json(client: httpx.AsyncClient, account: Account) -> None:
    response = await login(client, account.email, account.password)
    assert response.status_code == 200, response.text
    body = response.json()
    assert_token_pair(body)
    assert body["user"]["id"] == account.user_id
    assert body["user"]["last_login_at"] is not None
    me = await client.get(ME, headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200


async def test_login_with_oauth2_password_form(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.post(LOGIN, data={"username": account.email, "password": account.password})
    assert response.request.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert response.status_code == 200, response.text
    body = response.json()
    assert_token_pair(body)
    assert body["user"]["id"] == account.user_id


async def test_login_form_with_wrong_password_is_401(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.post(LOGIN, data={"username": account.email, "password": "wrong-password"})
    assert_unauthorized(response)


async def test_login_form_missing_password_is_422(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.post(LOGIN, data={"username": account.email})
    details = assert_envelope(response, 422)["details"]
    assert "password" in details


async def test_login_wrong_password_is_401(client: httpx.AsyncClient, account: Account) -> None:
    body = assert_unauthorized(await login(client, account.email, "wrong-password"))
    assert body["error"] == "Invalid email or password"


async def test_login_unknown_email_is_the_same_401(client: httpx.AsyncClient) -> None:
    body = assert_unauthorized(await login(client, fresh_email("nobody"), "whatever-password"))
    # No account enumeration: same message as a wrong password.
    assert body["error"] == "Invalid email or password"


async def test_login_json_missing_fields_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(LOGIN, json={})
    details = assert_envelope(response, 422)["details"]
    assert {"email", "password"} <= set(details), details


async def test_login_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(LOGIN, content=b'{"email": "a@b.c", ', headers={"Content-Type": "application/json"})
    assert_envelope(response, 400)
    # Nested past the parser's limit (found by fuzzing: json.loads ran out of stack, a 500).
    deep = b"[" * 10_000 + b"]" * 10_000
    assert_envelope(await client.post(LOGIN, content=deep, headers={"Content-Type": "application/json"}), 400)


# --- throttling ---------------------------------------------------------------------------


async def test_login_throttled_after_max_failures_per_account(client: httpx.AsyncClient, settings: Settings) -> None:
    victim = await register(client, email=fresh_email("throttle"))
    bystander = await register(client, email=fresh_email("bystander"))
    limit = settings.login_max_failures_per_account
    assert limit == 5
    for _ in range(limit):
        assert_unauthorized(await login(client, victim.email, "wrong-password"))

    # Now even the right password is refused, with Retry-After and the envelope.
    response = await login(client, victim.email, victim.password)
    body = assert_envelope(response, 429)
    retry_after = response.headers.get("Retry-After")
    assert retry_after is not None and int(retry_after) > 0
    assert body["details"]["retry_after_seconds"] == int(retry_after)

    # The OAuth2 form path is throttled too.
    form = await client.post(LOGIN, data={"username": victim.email, "password": victim.password})
    assert_envelope(form, 429)
    assert "Retry-After" in form.headers

    # Other accounts are not affected, and issued tokens still work.
    assert (await login(client, bystander.email, bystander.password)).status_code == 200
    assert (await client.get(ME, headers=victim.headers)).status_code == 200


async def test_login_throttle_counts_failures_whatever_the_email_case(client: httpx.AsyncClient, settings: Settings) -> None:
    victim = await register(client, email=fresh_email("case"))
    for i in range(settings.login_max_failures_per_account):
        variant = victim.email.upper() if i % 2 else victim.email
        assert_unauthorized(await login(client, variant, "wrong-password"))
    assert_envelope(await login(client, victim.email, victim.password), 429)


async def test_login_below_threshold_still_works(client: httpx.AsyncClient, settings: Settings) -> None:
    victim = await register(client, email=fresh_email("below"))
    for _ in range(settings.login_max_failures_per_account - 1):
        assert_unauthorized(await login(client, victim.email, "wrong-password"))
    assert (await login(client, victim.email, victim.password)).status_code == 200


# --- refresh, logout ------------------------------------------------------------------------


async def test_refresh_rotates_the_pair(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.post(REFRESH, json={"refresh_token": account.refresh_token})
    assert response.status_code == 200, response.text
    body = response.json()
    assert_token_pair(body)
    assert body["refresh_token"] != account.refresh_token
    assert body["access_token"] != account.access_token
    assert body["user"]["id"] == account.user_id
    assert (await client.get(ME, headers={"Authorization": f"Bearer {body['access_token']}"})).status_code == 200
    # The new refresh token can be used in turn.
    again = await client.post(REFRESH, json={"refresh_token": body["refresh_token"]})
    assert again.status_code == 200, again.text


async def test_refresh_reuse_revokes_the_whole_family(client: httpx.AsyncClient, account: Account) -> None:
    first = await client.post(REFRESH, json={"refresh_token": account.refresh_token})
    assert first.status_code == 200
    newer = first.json()["refresh_token"]

    # The old token presented again: refused...
    replay = await client.post(REFRESH, json={"refresh_token": account.refresh_token})
    assert_unauthorized(replay)
    # ...and the token issued from it is revoked too (the thief or the victim, both are out).
    assert_unauthorized(await client.post(REFRESH, json={"refresh_token": newer}))
    # A second replay stays refused.
    assert_unauthorized(await client.post(REFRESH, json={"refresh_token": account.refresh_token}))


async def test_refresh_reuse_does_not_touch_other_sessions(client: httpx.AsyncClient, account: Account) -> None:
    other_session = (await login(client, account.email, account.password)).json()["refresh_token"]
    assert (await client.post(REFRESH, json={"refresh_token": account.refresh_token})).status_code == 200
    assert_unauthorized(await client.post(REFRESH, json={"refresh_token": account.refresh_token}))
    assert (await client.post(REFRESH, json={"refresh_token": other_session})).status_code == 200


@pytest.mark.parametrize("token", ["x" * 43, "not-a-real-refresh-token"])
async def test_refresh_unknown_token_is_401(client: httpx.AsyncClient, token: str) -> None:
    assert_unauthorized(await client.post(REFRESH, json={"refresh_token": token}))


async def test_refresh_with_access_token_is_refused(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.post(REFRESH, json={"refresh_token": account.access_token})
    assert response.status_code in (401, 422), response.text
    assert_envelope(response, response.status_code)


async def test_logout_revokes_the_refresh_token(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.post(LOGOUT, json={"refresh_token": account.refresh_token})
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert_unauthorized(await client.post(REFRESH, json={"refresh_token": account.refresh_token}))


async def test_logout_revokes_the_family(client: httpx.AsyncClient, account: Account) -> None:
    rotated = (await client.post(REFRESH, json={"refresh_token": account.refresh_token})).json()["refresh_token"]
    # Logging out with the (used) parent ends the session: the current token is revoked too.
    assert (await client.post(LOGOUT, json={"refresh_token": account.refresh_token})).status_code == 204
    assert_unauthorized(await client.post(REFRESH, json={"refresh_token": rotated}))


async def test_logout_unknown_token_is_401(client: httpx.AsyncClient) -> None:
    assert_unauthorized(await client.post(LOGOUT, json={"refresh_token": "unknown-token-0123456789"}))


# --- /me and /profile -------------------------------------------------------------------------


async def test_me(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.get(ME, headers=account.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == account.user_id
    assert body["email"] == account.email
    assert body["role"] == "admin"
    assert body["workspace"]["id"] == account.workspace_id
    assert set(body) == {"id", "email", "name", "role", "is_superuser", "workspace", "created_at", "last_login_at"}


async def test_profile_change_name(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.put(PROFILE, headers=account.headers, json={"name": "Renamed Person"})
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Renamed Person"
    assert (await client.get(ME, headers=account.headers)).json()["name"] == "Renamed Person"
    # A name change does not end sessions.
    assert (await client.post(REFRESH, json={"refresh_token": account.refresh_token})).status_code == 200


async def test_profile_requires_authentication(client: httpx.AsyncClient) -> None:
    assert_unauthorized(await client.put(PROFILE, json={"name": "Anonymous"}))


async def test_profile_password_change_needs_current_password(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.put(PROFILE, headers=account.headers, json={"new_password": "brand-new-password"})
    assert_envelope(response, 422)
    # Nothing changed.
    assert (await login(client, account.email, account.password)).status_code == 200


async def test_profile_password_change_with_wrong_current_password_is_refused(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.put(PROFILE, headers=account.headers, json={"current_password": "not-my-password", "new_password": "brand-new-password"})
    assert_unauthorized(response)
    assert (await login(client, account.email, account.password)).status_code == 200
    assert_unauthorized(await login(client, account.email, "brand-new-password"))


async def test_profile_password_change(client: httpx.AsyncClient, account: Account) -> None:
    second_session = (await login(client, account.email, account.password)).json()["refresh_token"]
    response = await client.put(PROFILE, headers=account.headers, json={"current_password": account.password, "new_password": "brand-new-password"})
    assert response.status_code == 200, response.text

    assert_unauthorized(await login(client, account.email, account.password))
    assert (await login(client, account.email, "brand-new-password")).status_code == 200
    # Every refresh token issued before the change is revoked.
    assert_unauthorized(await client.post(REFRESH, json={"refresh_token": account.refresh_token}))
    assert_unauthorized(await client.post(REFRESH, json={"refresh_token": second_session}))


async def test_profile_new_password_is_validated(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.put(PROFILE, headers=account.headers, json={"current_password": account.password, "new_password": "short"})
    details = assert_envelope(response, 422)["details"]
    assert "new_password" in details


async def test_profile_email_change(client: httpx.AsyncClient, account: Account) -> None:
    new_email = fresh_email("moved")
    response = await client.put(PROFILE, headers=account.headers, json={"email": new_email.upper(), "current_password": account.password})
    assert response.status_code == 200, response.text
    assert response.json()["email"] == new_email
    assert (await login(client, new_email, account.password)).status_code == 200
    assert_unauthorized(await login(client, account.email, account.password))


async def test_profile_email_change_needs_current_password(client: httpx.AsyncClient, account: Account) -> None:
    assert_envelope(await client.put(PROFILE, headers=account.headers, json={"email": fresh_email()}), 422)


async def test_profile_email_change_to_taken_email_is_409(client: httpx.AsyncClient, account: Account, other_account: Account) -> None:
    response = await client.put(PROFILE, headers=account.headers, json={"email": other_account.email.upper(), "current_password": account.password})
    body = assert_envelope(response, 409)
    assert "email" in body["details"]
    assert (await client.get(ME, headers=account.headers)).json()["email"] == account.email


async def test_profile_unknown_field_is_422(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.put(PROFILE, headers=account.headers, json={"role": "admin"})
    assert "role" in assert_envelope(response, 422)["details"]


# --- bad access tokens ---------------------------------------------------------------------------


def b64url(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()


def claims_for(account: Account, **overrides: object) -> dict:
    now = int(time.time())
    return {"sub": account.user_id, "iat": now, "exp": now + 600, "jti": uuid.uuid4().hex, "typ": "access", "ws": account.workspace_id, "role": "admin", **overrides}


async def call_me(client: httpx.AsyncClient, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return await client.get(ME, headers=headers)


async def test_well_formed_crafted_token_is_accepted(client: httpx.AsyncClient, account: Account, settings: Settings) -> None:
    # The control for the crafted-token tests below: the same recipe with the right key works.
    token = jwt.encode(claims_for(account), settings.secret_key, algorithm="HS256")
    assert (await call_me(client, token)).status_code == 200


async def test_missing_token_is_401(client: httpx.AsyncClient) -> None:
    assert_unauthorized(await call_me(client, None))


@pytest.mark.parametrize("header", ["Bearer", "bearer", "Bearer  x y", "Basic dXNlcjpwYXNz", "Token abc"])
async def test_malformed_authorization_header_is_401(client: httpx.AsyncClient, header: str) -> None:
    assert_unauthorized(await client.get(ME, headers={"Authorization": header}))


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.", "x" * 500])
async def test_garbage_token_is_401(client: httpx.AsyncClient, token: str) -> None:
    assert_unauthorized(await call_me(client, token))


async def test_expired_token_is_401(client: httpx.AsyncClient, account: Account, settings: Settings) -> None:
    now = int(time.time())
    token = jwt.encode(claims_for(account, iat=now - 3600, exp=now - 60), settings.secret_key, algorithm="HS256")
    assert_unauthorized(await call_me(client, token))


async def test_token_signed_with_wrong_key_is_401(client: httpx.AsyncClient, account: Account) -> None:
    token = jwt.encode(claims_for(account), "a-completely-different-secret-key-of-length", algorithm="HS256")
    assert_unauthorized(await call_me(client, token))


async def test_alg_none_token_is_401(client: httpx.AsyncClient, account: Account) -> None:
    for alg in ("none", "None", "NONE"):
        token = f"{b64url({'alg': alg, 'typ': 'JWT'})}.{b64url(claims_for(account))}."
        assert_unauthorized(await call_me(client, token))


@pytest.mark.filterwarnings("ignore:The HMAC key")
async def test_other_hmac_algorithm_is_401(client: httpx.AsyncClient, account: Account, settings: Settings) -> None:
    token = jwt.encode(claims_for(account), settings.secret_key, algorithm="HS512")
    assert_unauthorized(await call_me(client, token))


async def test_refresh_token_used_as_access_token_is_401(client: httpx.AsyncClient, account: Account) -> None:
    assert_unauthorized(await call_me(client, account.refresh_token))


async def test_token_of_another_type_is_401(client: httpx.AsyncClient, account: Account, settings: Settings) -> None:
    token = jwt.encode(claims_for(account, typ="refresh"), settings.secret_key, algorithm="HS256")
    assert_unauthorized(await call_me(client, token))


@pytest.mark.parametrize("missing", ["exp", "sub", "typ"])
async def test_token_missing_a_required_claim_is_401(client: httpx.AsyncClient, account: Account, settings: Settings, missing: str) -> None:
    claims = claims_for(account)
    del claims[missing]
    assert_unauthorized(await call_me(client, jwt.encode(claims, settings.secret_key, algorithm="HS256")))


@pytest.mark.parametrize("sub", ["not-a-uuid", str(uuid.uuid4())])
async def test_token_for_unknown_subject_is_401(client: httpx.AsyncClient, account: Account, settings: Settings, sub: str) -> None:
    token = jwt.encode(claims_for(account, sub=sub), settings.secret_key, algorithm="HS256")
    assert_unauthorized(await call_me(client, token))


async def test_token_of_deactivated_member_is_401(client: httpx.AsyncClient, account: Account) -> None:
    member = await add_member(client, account, "member")
    assert (await call_me(client, member.access_token)).status_code == 200
    response = await client.patch(f"/api/v1/workspace/members/{member.user_id}", headers=account.headers, json={"is_active": False})
    assert response.status_code == 200, response.text
    assert_unauthorized(await call_me(client, member.access_token))
    # Its refresh token is revoked and its password no longer logs in.
    assert_unauthorized(await client.post(REFRESH, json={"refresh_token": member.refresh_token}))
    assert_unauthorized(await login(client, member.email, member.password))


async def test_role_comes_from_the_database_not_the_token(client: httpx.AsyncClient, account: Account) -> None:
    # The token carries a "role" claim, but demoting a member must take effect before its token expires.
    member = await add_member(client, account, "member")
    train = {"dataset_id": str(uuid.uuid4()), "algorithm": "seasonal_naive"}
    before = await client.post("/api/v1/models/train", headers=member.headers, json=train)
    assert_envelope(before, 404)  # a writer gets past the role check to the missing dataset
    patch = await client.patch(f"/api/v1/workspace/members/{member.user_id}", headers=account.headers, json={"role": "viewer"})
    assert patch.status_code == 200, patch.text
    me = await call_me(client, member.access_token)
    assert me.status_code == 200 and me.json()["role"] == "viewer"
    assert_envelope(await client.post("/api/v1/models/train", headers=member.headers, json=train), 403)


async def test_concurrent_refreshes_of_one_token_issue_at_most_one_pair(client: httpx.AsyncClient, account: Account) -> None:
    # A refresh token is single-use even when two requests race with it: at most one wins,
    # the others are treated as a replay.
    import asyncio

    responses = await asyncio.gather(*(client.post(REFRESH, json={"refresh_token": account.refresh_token}) for _ in range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) <= 1, statuses
    assert set(statuses) <= {200, 401}, statuses
    for response in responses:
        if response.status_code != 200:
            assert_unauthorized(response)


async def test_a_refresh_racing_a_committed_rotation_is_a_replay(account: Account, settings: Settings, database: Database) -> None:
    """Deterministic version of the race above, at the service level: a second rotation that
    read the token before the first one committed must not issue a second pair."""
    import threading

    import anyio

    from vur.identity import service

    def scenario() -> TokenResponse | None:
        first_session = database.sessionmaker()
        try:
            assert service.rotate_refresh_token(first_session, settings, account.refresh_token) is not None
            outcome: dict[str, TokenResponse | None] = {}

            def second() -> None:
                with database.session() as session:
                    outcome["second"] = service.rotate_refresh_token(session, settings, account.refresh_token)

            racer = threading.Thread(target=second)
            racer.start()
            time.sleep(0.5)  # the racer has read the row and waits for the first writer
            first_session.commit()
        finally:
            first_session.close()
        racer.join(30)
        assert not racer.is_alive()
        return outcome["second"]

    assert await anyio.to_thread.run_sync(scenario) is None
