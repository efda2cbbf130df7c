"""Each way an SSH connection can fail gets its own message and hint."""

from __future__ import annotations

import errno
import socket
from pathlib import Path

import asyncssh
import pytest

from ferryman.transport import connect_errors as ce
from ferryman.transport import ssh
from ferryman.transport.ssh import kill_argv, split_pid, with_pid

KNOWN = Path("/home/op/.config/ferryman/known_hosts")
KEY = Path("/home/op/.ssh/deploy_ed25519")
ATTEMPT = ce.Attempt(where="root@db.example.test:2222", hostname="db.example.test", port=2222,
                     connect_timeout=10, known_hosts=KNOWN, identity_file=KEY)


def cause(exc: BaseException) -> ce.ConnectFailure:
    return ce.describe(ATTEMPT, exc)


def test_missing_known_hosts_file_is_named_as_such() -> None:
    f = cause(FileNotFoundError(errno.ENOENT, "No such file or directory", str(KNOWN)))
    assert f.cause == "known_hosts missing"
    assert str(KNOWN) in f.message
    assert "accept_unknown_hosts" in f.hint and "ssh-keyscan -p 2222 db.example.test" in f.hint
    assert "sshd" not in f.hint


def test_missing_identity_file() -> None:
    f = cause(FileNotFoundError(errno.ENOENT, "No such file or directory", str(KEY)))
    assert f.cause == "identity missing" and str(KEY) in f.message
    assert "identity_file" in f.hint


def test_refused_names_the_port() -> None:
    f = cause(ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"))
    assert f.cause == "refused" and "port 2222" in f.message
    assert "sshd running" in f.hint


def test_timeout_is_not_a_refusal() -> None:
    f = cause(TimeoutError())
    assert f.cause == "timeout" and "10s" in f.message
    assert "host up" in f.hint and "sshd running" not in f.hint


def test_auth_failure() -> None:
    f = cause(asyncssh.PermissionDenied("Permission denied"))
    assert f.cause == "auth" and "root@db.example.test:2222" in f.message
    assert "authorized_keys" in f.hint


def test_dns_failure() -> None:
    f = cause(socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    assert f.cause == "dns" and "db.example.test does not resolve" in f.message
    assert "DNS" in f.hint


@pytest.mark.parametrize("code", [errno.EHOSTUNREACH, errno.ENETUNREACH])
def test_no_route(code: int) -> None:
    f = cause(OSError(code, "No route to host"))
    assert f.cause == "no route" and "VPN" in f.hint


def test_handshake_cut() -> None:
    f = cause(asyncssh.ConnectionLost("Connection lost"))
    assert f.cause == "handshake" and "SSH server on that port" in f.hint


def test_key_with_passphrase() -> None:
    f = cause(asyncssh.KeyImportError("Passphrase must be specified to import encrypted "
                                      "private keys"))
    assert f.cause == "identity unreadable" and f"ssh-add {KEY}" in f.hint


def test_every_cause_has_its_own_hint() -> None:
    failures = [
        cause(FileNotFoundError(errno.ENOENT, "x", str(KNOWN))),
        cause(FileNotFoundError(errno.ENOENT, "x", str(KEY))),
        cause(ConnectionRefusedError(errno.ECONNREFUSED, "x")),
        cause(TimeoutError()),
        cause(asyncssh.PermissionDenied("x")),
        cause(socket.gaierror(socket.EAI_NONAME, "x")),
        cause(OSError(errno.EHOSTUNREACH, "x")),
    ]
    assert len({f.cause for f in failures}) == len(failures)
    assert len({f.hint for f in failures}) == len(failures)


def test_pid_line_is_split_from_stderr() -> None:
    assert split_pid(b"ferryman-pid:4242\nboom\n") == ("4242", b"boom\n")
    assert split_pid(b"no pid here\n") == (None, b"no pid here\n")
    assert split_pid(b"") == (None, b"")


def test_wrappers_pass_values_as_arguments() -> None:
    odd = ["a b", "$(touch pwned)"]
    assert with_pid(odd)[:2] == ["sh", "-c"] and with_pid(odd)[-2:] == odd
    assert kill_argv("4242")[-1] == "4242" and "4242" not in kill_argv("4242")[2]


def test_aes_gcm_is_preferred_unless_the_operators_ssh_config_names_ciphers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert not ssh._ciphers_configured()  # no ~/.ssh/config at all
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text("Host prod\n  User deploy\n")
    assert not ssh._ciphers_configured()
    (tmp_path / ".ssh" / "config").write_text("Host *\n  Ciphers chacha20-poly1305@openssh.com\n")
    assert ssh._ciphers_configured()
    # The preference keeps asyncssh's own list behind it (OpenSSH's "^" prefix).
    assert ssh.PREFERRED_CIPHERS.startswith("^aes128-gcm@openssh.com")
