"""`streams users`: the broker's SASL users, kept in a users file of SCRAM credentials;
`streams tokens`: the REST proxy's bearer tokens, kept as their SHA-256.

The file holds, per user and mechanism, a salt, an iteration count, StoredKey
and ServerKey (runtime/security/users.py); a password is read from a prompt
or stdin, salted, and forgotten. It is never taken from the command line,
where other users of the machine could read it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import click

from runtime.security import tokens as tokens_file
from runtime.security import users as users_file
from runtime.security.errors import UsersFileError
from runtime.security.scram import (
    ITERATIONS_DEFAULT,
    ITERATIONS_MAX,
    ITERATIONS_MIN,
    MECHANISMS,
    new_credential,
)

users_option = click.option(
    "--users",
    "path",
    required=True,
    envvar="STREAMS_USERS",
    type=click.Path(dir_okay=False),
    help="the users file (or $STREAMS_USERS)",
)


@click.group()
def users() -> None:
    """Users of the broker's SASL listeners (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)."""


@users.command("add")
@click.argument("name")
@users_option
@click.option("--password-stdin", is_flag=True, help="read the password from stdin (one line)")
@click.option(
    "--mechanism",
    "mechanisms",
    type=click.Choice(MECHANISMS),
    multiple=True,
    help="SCRAM mechanism to store a credential for (repeatable; default: both). "
    "PLAIN logins are checked against either.",
)
@click.option(
    "--iterations",
    type=click.IntRange(ITERATIONS_MIN, ITERATIONS_MAX),
    default=ITERATIONS_DEFAULT,
    show_default=True,
    help="PBKDF2 iterations of the salted password",
)
def add(
    name: str, path: str, password_stdin: bool, mechanisms: tuple[str, ...], iterations: int
) -> None:
    """Add user NAME, or set its password if it exists."""
    try:
        users_file.check_user_name(name)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from exc
    password = _read_password(password_stdin)
    credentials = {m: new_credential(m, password, iterations) for m in mechanisms or MECHANISMS}
    with _file_errors():
        users_file.set_user(path, name, credentials)
    click.echo(f"user {name} set in {path} ({', '.join(sorted(credentials))})", err=True)


@users.command("remove")
@click.argument("name")
@users_option
def remove(name: str, path: str) -> None:
    """Remove user NAME."""
    with _file_errors():
        removed = users_file.remove_user(path, name)
    if not removed:
        raise click.ClickException(f"no user {name!r} in {path}")
    click.echo(f"user {name} removed from {path}", err=True)


@users.command("list")
@users_option
def list_users(path: str) -> None:
    """The users, with their mechanisms and iteration counts."""
    with _file_errors():
        known = users_file.load(path)
    for name, credentials in sorted(known.items()):
        mechanisms = ",".join(f"{m}:{c.iterations}" for m, c in sorted(credentials.items()))
        click.echo(f"{name}\t{mechanisms}")


@contextlib.contextmanager
def _file_errors() -> Iterator[None]:
    """A users or tokens file that cannot be read or written: one clear error."""
    try:
        yield
    except UsersFileError as exc:
        raise click.ClickException(str(exc)) from exc


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password[:-1] if password.endswith("\r") else password
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise click.UsageError("the password is empty")
    return password


tokens_option = click.option(
    "--tokens",
    "path",
    required=True,
    envvar="STREAMS_TOKENS",
    type=click.Path(dir_okay=False),
    help="the tokens file (or $STREAMS_TOKENS)",
)


@click.group()
def tokens() -> None:
    """Bearer tokens of the broker's REST proxy (`--http-auth bearer --http-tokens FILE`)."""


@tokens.command("add")
@click.argument("name")
@tokens_option
def add_token(name: str, path: str) -> None:
    """Make a token for NAME (principal User:NAME), replacing any it had; printed once."""
    try:
        token = tokens_file.add_token(path, name)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from exc
    except UsersFileError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(token)  # stdout, alone: scripts capture it; the file keeps its digest only
    click.echo(f"token for {name} set in {path}: it is shown only now", err=True)


@tokens.command("remove")
@click.argument("name")
@tokens_option
def remove_token(name: str, path: str) -> None:
    """Remove NAME's token."""
    with _file_errors():
        removed = tokens_file.remove_token(path, name)
    if not removed:
        raise click.ClickException(f"no token for {name!r} in {path}")
    click.echo(f"token for {name} removed from {path}", err=True)


@tokens.command("list")
@tokens_option
def list_tokens(path: str) -> None:
    """The names that have a token."""
    with _file_errors():
        names = sorted(tokens_file.load(path))
    for name in names:
        click.echo(name)
