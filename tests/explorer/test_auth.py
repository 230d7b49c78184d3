"""Optional basic authentication: users file, login on every route, the add-user command."""

from __future__ import annotations

import base64
import stat
import subprocess
import sys

import pytest
from radmap.analysis.validate import InputError
from radmap.explorer.app import create_app
from radmap.explorer.auth import BasicAuth, add_user, read_users

from tests.explorer.conftest import toy_gene_sets


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture(scope="module")
def users_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("auth") / "users.txt"
    add_user(path, "ana", "correct horse battery")
    add_user(path, "ben.o", "staple-staple")
    return path


@pytest.fixture(scope="module")
def client(users_file, toy_bundle_path, toy_adata, tmp_path_factory):
    root = tmp_path_factory.mktemp("auth-app")
    app = create_app(
        toy_bundle_path,
        pins_dir=root / "pins",
        cache_dir=root / "cache",
        gene_sets=toy_gene_sets(toy_adata),
        users_file=users_file,
    )
    return app.server.test_client()


def test_users_file_holds_hashes_only_and_is_private(users_file):
    text = users_file.read_text()
    assert "correct horse" not in text and "staple" not in text
    users = read_users(users_file)
    assert set(users) == {"ana", "ben.o"}
    assert all(h.startswith(("scrypt:", "pbkdf2:")) for h in users.values())
    assert stat.S_IMODE(users_file.stat().st_mode) == 0o600


def test_add_user_changes_an_existing_password(tmp_path):
    path = tmp_path / "users.txt"
    assert add_user(path, "ana", "first-password") is True
    assert add_user(path, "ana", "second-password") is False
    auth = BasicAuth(read_users(path))
    assert auth.check("ana", "second-password")
    assert not auth.check("ana", "first-password")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "lists no users"),
        ("# only a comment\n", "lists no users"),
        ("ana\n", "line 1: expected `user:password-hash`"),
        ("ana:hunter2\n", "password of 'ana' is not hashed"),
        ("bad name:scrypt:1$x$y\n", "user name 'bad name'"),
        ("ana:scrypt:1$x$y\nana:pbkdf2:1$x$y\n", "line 2: user 'ana' appears twice"),
    ],
)
def test_bad_users_files_are_refused_with_the_line(tmp_path, text, message):
    path = tmp_path / "users.txt"
    path.write_text(text)
    with pytest.raises(InputError, match=message.replace("$", r"\$")):
        read_users(path)


def test_missing_users_file_and_short_password(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_users(tmp_path / "absent.txt")
    with pytest.raises(InputError, match="at least 8"):
        add_user(tmp_path / "users.txt", "ana", "short")
    assert not (tmp_path / "users.txt").exists()


def test_check_remembers_only_valid_credentials(users_file):
    auth = BasicAuth(read_users(users_file))
    assert not auth.check("ana", "wrong")
    assert not auth._verified
    assert not auth.check("nobody", "correct horse battery")
    assert not auth.check(None, None)
    assert auth.check("ana", "correct horse battery")
    assert len(auth._verified) == 1
    assert auth.check("ana", "correct horse battery")
    assert not auth.check("ben.o", "correct horse battery")


@pytest.mark.parametrize("path", ["/", "/map", "/assets/radmap.css", "/_dash-layout"])
def test_every_route_needs_a_login(client, path):
    refused = client.get(path)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith('Basic realm="radmap"')
    assert refused.headers["X-Content-Type-Options"] == "nosniff"
    assert b"radmap" in refused.data and b"<script" not in refused.data
    assert client.get(path, headers=basic("ana", "wrong")).status_code == 401
    assert client.get(path, headers=basic("ana", "correct horse battery")).status_code == 200


def test_callbacks_need_a_login(client):
    body = {"output": "x.children", "outputs": {"id": "x", "property": "children"}, "inputs": []}
    assert client.post("/_dash-update-component", json=body).status_code == 401


def test_add_user_command_and_serve_checks_the_file(tmp_path, toy_bundle_path):
    path = tmp_path / "users.txt"
    command = [sys.executable, "-m", "radmap.cli"]
    added = subprocess.run(
        [*command, "add-user", str(path), "carla", "--password-stdin"],
        input="a long passphrase\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
    assert "added carla" in added.stderr
    assert BasicAuth(read_users(path)).check("carla", "a long passphrase")

    path.write_text("carla:plaintext\n")
    refused = subprocess.run(
        [*command, "serve", str(toy_bundle_path), "--users", str(path), "--port", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"radmap: error: users file {path.name}, line 1: the password of 'carla' is not "
        f"hashed; set it with `radmap add-user {path} carla`"
    ]


def test_a_changed_or_deleted_login_stops_working_without_a_restart(
    tmp_path, toy_bundle_path, toy_adata
):
    path = tmp_path / "users.txt"
    add_user(path, "ana", "first password")
    add_user(path, "ben", "bens password")
    app = create_app(
        toy_bundle_path,
        pins_dir=tmp_path / "pins",
        cache_dir=tmp_path / "cache",
        gene_sets=toy_gene_sets(toy_adata),
        users_file=path,
    )
    client = app.server.test_client()
    assert client.get("/map", headers=basic("ana", "first password")).status_code == 200

    add_user(path, "ana", "second password")
    assert client.get("/map", headers=basic("ana", "first password")).status_code == 401
    assert client.get("/map", headers=basic("ana", "second password")).status_code == 200

    path.write_text(
        "".join(line for line in path.read_text().splitlines(True) if "ana:" not in line)
    )
    assert client.get("/map", headers=basic("ana", "second password")).status_code == 401
    assert client.get("/map", headers=basic("ben", "bens password")).status_code == 200

    path.unlink()
    assert client.get("/map", headers=basic("ben", "bens password")).status_code == 401
    add_user(path, "ben", "bens new password")
    assert client.get("/map", headers=basic("ben", "bens new password")).status_code == 200


def test_unknown_users_cost_the_same_hash_check(users_file, monkeypatch):
    import radmap.explorer.auth as auth_module

    auth = BasicAuth(read_users(users_file))
    checked = []
    real = auth_module.check_password_hash

    def counting(password_hash, password):
        checked.append(password_hash.split("$", 1)[0])
        return real(password_hash, password)

    monkeypatch.setattr(auth_module, "check_password_hash", counting)
    assert not auth.check("ana", "wrong password")
    assert not auth.check("nobody", "wrong password")
    assert not auth.check("", None)
    assert len(checked) == 3, "known and unknown names do the same work"
    assert len(set(checked)) == 1, "with the same hash method and cost"
