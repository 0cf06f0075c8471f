"""HttpAuthenticator: Basic against the users file (one PBKDF2 per credentials,
not per request, and none once the password changed), bearer tokens by digest."""

from __future__ import annotations

import asyncio
import base64

import pytest

import runtime.broker.http_auth as http_auth
from runtime.broker.http_auth import HttpAuthenticator, _Refused
from runtime.security.errors import UsersFileError
from runtime.security.scram import new_credential
from runtime.security.tokens import TokensFile, add_token
from runtime.security.users import UsersFile, set_user


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def set_password(path, user: str, password: str) -> None:
    set_user(path, user, {"SCRAM-SHA-256": new_credential("SCRAM-SHA-256", password, 4096)})


@pytest.fixture
def checks(monkeypatch) -> list[str]:
    """The users whose password went through a real (PBKDF2) check."""
    done: list[str] = []
    real = http_auth.verify_plain

    def counted(lookup, user, password):
        done.append(user)
        return real(lookup, user, password)

    monkeypatch.setattr(http_auth, "verify_plain", counted)
    return done


def test_basic_pays_one_check_per_credentials_until_the_password_changes(tmp_path, checks):
    users = tmp_path / "users.json"
    set_password(users, "alice", "one")
    auth = HttpAuthenticator(["basic"], users=UsersFile(users))

    async def main() -> None:
        for _ in range(5):
            assert await auth.principal(basic("alice", "one")) == "User:alice"
        assert checks == ["alice"]
        set_password(users, "alice", "two")
        with pytest.raises(_Refused, match="wrong password"):
            await auth.principal(basic("alice", "one"))
        assert await auth.principal(basic("alice", "two")) == "User:alice"
        assert checks == ["alice", "alice", "alice"]

    asyncio.run(main())


def test_refusals_say_why_in_the_log_but_not_to_the_client(tmp_path):
    users = tmp_path / "users.json"
    set_password(users, "alice", "one")
    tokens = tmp_path / "tokens.json"
    token = add_token(tokens, "ci")
    auth = HttpAuthenticator(["basic", "bearer"], users=UsersFile(users), tokens=TokensFile(tokens))

    async def refused(header: str | None) -> _Refused:
        with pytest.raises(_Refused) as caught:
            await auth.principal(header)
        return caught.value

    async def main() -> None:
        assert await auth.principal(f"Bearer {token}") == "User:ci"
        assert (await refused(None)).client_message == "credentials required"
        unknown = await refused(basic("bob", "x"))
        wrong = await refused(basic("alice", "x"))
        assert "unknown user" in str(unknown) and "wrong password" in str(wrong)
        assert unknown.client_message == wrong.client_message == "invalid credentials"
        assert "scheme 'digest' not accepted" in str(await refused("Digest abc"))
        assert "unknown bearer token" in str(await refused(f"Bearer {token}x"))

    asyncio.run(main())


def test_schemes_need_their_files(tmp_path):
    with pytest.raises(ValueError, match="users file"):
        HttpAuthenticator(["basic"])
    with pytest.raises(ValueError, match="tokens file"):
        HttpAuthenticator(["bearer"])
    with pytest.raises(ValueError, match="expected some of"):
        HttpAuthenticator(["digest"])


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '{"format": "streams-users", "version": 1, "tokens": {}}',
        '{"format": "streams-tokens", "version": 2, "tokens": {}}',
        '{"format": "streams-tokens", "version": 1, "tokens": {"ci": {"sha256": "abc"}}}',
        '{"format": "streams-tokens", "version": 1, "tokens": {"": {"sha256": "'
        + "0" * 64
        + '"}}}',
    ],
    ids=["not-json", "other-format", "other-version", "short-digest", "empty-name"],
)
def test_a_broken_tokens_file_is_refused_whole(tmp_path, text):
    path = tmp_path / "tokens.json"
    path.write_text(text)
    with pytest.raises(UsersFileError, match=r"tokens file|not a streams tokens file"):
        TokensFile(path)
