#!/bin/sh
# Test host: its own Docker engine and SSH server, as on a real server.
set -e
mkdir -p /run/sshd /root/.ssh
chmod 700 /root/.ssh
if [ -n "$AUTHORIZED_KEY" ]; then
  printf '%s\n' "$AUTHORIZED_KEY" > /root/.ssh/authorized_keys
  chmod 600 /root/.ssh/authorized_keys
fi
[ -f /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -A >/dev/null
dockerd --host=unix:///var/run/docker.sock --storage-driver="${DOCKER_STORAGE_DRIVER:-overlay2}" \
  >/var/log/dockerd.log 2>&1 &
exec /usr/sbin/sshd -D -e -p 22
