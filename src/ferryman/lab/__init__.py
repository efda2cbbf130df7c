"""Local test hosts: containers that each run their own Docker engine and SSH server.

Used by the integration tests and by `ferryman demo`: real servers on 127.0.0.1, built and
started on the local Docker engine, removed afterwards.
"""

from .hosts import Lab, LabHost
from .images import APP_IMAGE, HOST_IMAGE, KINDS, build_app_image, ensure_host_image

__all__ = [
    "APP_IMAGE", "HOST_IMAGE", "KINDS", "Lab", "LabHost", "build_app_image", "ensure_host_image",
]
