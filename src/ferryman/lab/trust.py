"""One test host reaching another over SSH by itself (restic's sftp repository on a backup
box): a key made on the source, authorised on the target, the target's host key known, and
an alias in the source's ~/.ssh/config. Between the lab's containers only."""

from __future__ import annotations

from .hosts import Lab, LabHost

KEY = "/root/.ssh/id_ferryman_lab"


def trust(lab: Lab, src: LabHost, dst: LabHost, alias: str) -> str:
    """Lets `ssh ALIAS` on src reach root on dst; returns the alias."""
    ip = lab.ip_address(dst)
    lab.sh(src, f"mkdir -p /root/.ssh && chmod 700 /root/.ssh && "
                f"[ -f {KEY} ] || ssh-keygen -q -t ed25519 -N '' -f {KEY}")
    pub = lab.sh(src, f"cat {KEY}.pub")
    lab.exec(dst, ["sh", "-c", "cat >> /root/.ssh/authorized_keys"], input=pub.encode())
    known = lab.sh(dst, "cat /etc/ssh/ssh_host_ed25519_key.pub").split()[:2]
    lab.exec(src, ["sh", "-c", "cat >> /root/.ssh/known_hosts"],
             input=f"{ip} {' '.join(known)}\n".encode())
    lab.exec(src, ["sh", "-c", "cat >> /root/.ssh/config"],
             input=(f"Host {alias}\n  HostName {ip}\n  User root\n  IdentityFile {KEY}\n"
                    "  BatchMode yes\n").encode())
    return alias
