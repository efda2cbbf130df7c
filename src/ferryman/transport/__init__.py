"""Hosts: run argv lists on servers (SSH) or on the operator's machine, and pipe between them."""

from .base import CommandFailed, Host, Process, Result, TransportError
from .local import LocalHost
from .pipe import PipeResult, pipe
from .ssh import SshHost, SshTarget

__all__ = [
    "CommandFailed",
    "Host",
    "LocalHost",
    "PipeResult",
    "Process",
    "Result",
    "SshHost",
    "SshTarget",
    "TransportError",
    "pipe",
]
