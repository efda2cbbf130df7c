"""Why an SSH connection could not be made, and the next thing to try: one cause, one hint.

Pure: the caller passes the exception asyncssh or the socket layer raised and the paths it
gave them; nothing here touches the network, so every mapping is unit-tested.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from pathlib import Path

import asyncssh


@dataclass(frozen=True)
class ConnectFailure:
    cause: str  # a short name, stable for tests and logs: refused, timeout, dns...
    message: str
    hint: str


@dataclass(frozen=True)
class Attempt:
    """What the connection was asked to do, for messages that name it."""

    where: str  # user@host:port
    hostname: str
    port: int
    connect_timeout: float
    known_hosts: Path | None = None  # only when ferryman.yml names the file
    identity_file: Path | None = None


def missing_known_hosts(a: Attempt) -> ConnectFailure:
    return ConnectFailure(
        "known_hosts missing",
        f"cannot connect to {a.where}: known_hosts file {a.known_hosts} does not exist",
        f"create it with the host's key (ssh-keyscan -p {a.port} {a.hostname} >> "
        f"{a.known_hosts}, then compare the key with the server's), or set "
        "accept_unknown_hosts: true to record keys on first contact")


def missing_identity(a: Attempt) -> ConnectFailure:
    return ConnectFailure(
        "identity missing",
        f"cannot connect to {a.where}: identity file {a.identity_file} does not exist",
        "check identity_file in ferryman.yml (the private key, not the .pub), or leave it "
        "out to use ssh-agent and ~/.ssh")


def describe(a: Attempt, exc: BaseException) -> ConnectFailure:
    """The cause of a failed connection attempt, from the exception alone."""
    if isinstance(exc, asyncssh.PermissionDenied):
        return ConnectFailure(
            "auth", f"cannot connect to {a.where}: SSH login refused: {exc.reason}",
            "check the user, the identity_file (or the keys in ssh-agent) and that its public "
            "key is in the server's ~/.ssh/authorized_keys")
    if isinstance(exc, asyncssh.KeyImportError | asyncssh.KeyEncryptionError):
        key = a.identity_file or "the identity file"
        return ConnectFailure(
            "identity unreadable", f"cannot connect to {a.where}: cannot use {key}: {exc}",
            f"a key with a passphrase: load it with `ssh-add {key}` and leave identity_file "
            "out; otherwise check the file is an OpenSSH private key")
    if isinstance(exc, TimeoutError):
        return ConnectFailure(
            "timeout", f"cannot connect to {a.where}: no answer within {a.connect_timeout:g}s",
            "is the host up and the address right? A firewall that drops the port (rather "
            "than refusing it) looks like this too; raise ssh.connect_timeout for a slow link")
    if isinstance(exc, socket.gaierror):
        return ConnectFailure(
            "dns", f"cannot connect to {a.where}: the name {a.hostname} does not resolve: "
            f"{exc.strerror or exc}",
            "check the address in ferryman.yml, or the DNS (or /etc/hosts) of this machine")
    if isinstance(exc, asyncssh.DisconnectError):
        reason = exc.reason or type(exc).__name__
        return ConnectFailure(
            "handshake", f"cannot connect to {a.where}: it closed the SSH handshake: {reason}",
            "is it an SSH server on that port? sshd may also be refusing new connections "
            "(MaxStartups) or this client's address (sshd's log says why)")
    if isinstance(exc, OSError):
        return _os_failure(a, exc)
    return ConnectFailure("other", f"cannot connect to {a.where}: {exc}",
                          "run with --verbose for the SSH details")


def _os_failure(a: Attempt, exc: OSError) -> ConnectFailure:
    code = exc.errno
    reason = exc.strerror or str(exc)
    if isinstance(exc, FileNotFoundError) or code == errno.ENOENT:
        missing = Path(exc.filename) if exc.filename else None
        if missing is not None and a.known_hosts is not None and missing == a.known_hosts:
            return missing_known_hosts(a)
        if missing is not None and a.identity_file is not None and missing == a.identity_file:
            return missing_identity(a)
        what = f" {missing}" if missing else ""
        return ConnectFailure("file missing", f"cannot connect to {a.where}: a file the SSH "
                              f"client reads is missing:{what}",
                              "check known_hosts and identity_file in ferryman.yml and the "
                              "files ~/.ssh/config names")
    if isinstance(exc, ConnectionRefusedError) or code == errno.ECONNREFUSED:
        return ConnectFailure(
            "refused", f"cannot connect to {a.where}: connection refused (nothing listens on port "
            f"{a.port})",
            "the host answers but nothing listens there: is sshd running, and is the port "
            "right (address: user@host:port)?")
    if code in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return ConnectFailure(
            "no route", f"cannot connect to {a.where}: no route to {a.hostname}: {reason}",
            "check the address, and the network between here and there (VPN up? interface?)")
    if isinstance(exc, ConnectionResetError) or code == errno.ECONNRESET:
        return ConnectFailure(
            "reset", f"cannot connect to {a.where}: connection reset: {reason}",
            "something on the way (or sshd itself) cut it: is it an SSH server on that port, "
            "and does a firewall allow this client?")
    if isinstance(exc, PermissionError):
        missing = exc.filename or "a file"
        return ConnectFailure("file unreadable",
                              f"cannot connect to {a.where}: cannot read {missing}: {reason}",
                              "check the permissions of known_hosts and the identity file")
    return ConnectFailure("other", f"cannot connect to {a.where}: {reason}",
                          "check the address and the network to it")
