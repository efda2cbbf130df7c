"""Which containers are the business, which are stores, which are only watching; which mounts
hold data. Pure: by image name, port and path, each answer with the reason it was given."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from .facts import Mount, Seen
from .read import PathInfo

# Watching or managing the host: never stopped for a snapshot (source note 000 names
# node-exporter and portainer), and their own volumes are not the app's data.
MONITORING = {
    "node-exporter", "node_exporter", "cadvisor", "portainer", "portainer-ce", "portainer-ee",
    "watchtower", "prometheus", "pushgateway", "alertmanager", "grafana", "loki", "promtail",
    "netdata", "dozzle", "uptime-kuma", "telegraf", "fluent-bit", "fluentd", "filebeat",
    "metricbeat", "zabbix-agent", "zabbix-agent2", "glances", "autoheal", "diun", "ouroboros",
    "pgadmin4", "pgadmin", "phpmyadmin", "adminer", "mongo-express", "redis-commander",
    "redisinsight", "kibana", "blackbox-exporter", "mysqld-exporter", "postgres-exporter",
    "redis_exporter", "redis-exporter", "elasticsearch-exporter", "jaeger", "jaegertracing",
}

# Stores, in the order they are stopped after the writers: the search index before the
# database it mirrors, the cache last (source note 000 stops ES, MySQL, MinIO, Redis).
STORES: list[tuple[str, set[str], dict[int, str]]] = [
    ("search engine", {"elasticsearch", "opensearch", "solr", "meilisearch", "typesense",
                       "manticoresearch", "zincsearch"},
     {9200: "Elasticsearch", 7700: "Meilisearch", 8108: "Typesense"}),
    ("database", {"postgres", "postgresql", "postgis", "paradedb", "timescaledb", "pgvector",
                  "mysql", "mysql-server", "mariadb", "percona", "percona-server", "mongo",
                  "mongodb", "neo4j", "clickhouse", "clickhouse-server", "influxdb",
                  "cassandra", "couchdb", "cockroach", "mssql-server", "qdrant", "milvus",
                  "weaviate", "chroma", "etcd", "questdb", "surrealdb"},
     {5432: "PostgreSQL", 3306: "MySQL", 27017: "MongoDB", 7687: "Neo4j", 8123: "ClickHouse",
      8086: "InfluxDB", 9042: "Cassandra", 5984: "CouchDB", 26257: "CockroachDB",
      1433: "SQL Server", 6333: "Qdrant", 19530: "Milvus", 2379: "etcd"}),
    ("object store", {"minio", "seaweedfs", "garage"}, {}),
    ("queue", {"rabbitmq", "kafka", "redpanda", "nats", "activemq", "mosquitto", "zookeeper"},
     {5672: "RabbitMQ", 9092: "Kafka", 4222: "NATS", 1883: "MQTT"}),
    ("cache", {"redis", "redis-stack", "redis-stack-server", "valkey", "keydb", "memcached",
               "dragonfly"},
     {6379: "Redis", 11211: "memcached"}),
]
STORE_ORDER = [kind for kind, _, _ in STORES]

APP = "app"
MONITOR = "monitoring"


@dataclass(frozen=True)
class Role:
    kind: str  # "app", "monitoring", or a store kind from STORES
    reason: str

    @property
    def store(self) -> bool:
        return self.kind in STORE_ORDER


def image_words(image: str) -> list[str]:
    """The path components of an image's repository, lowercased, without registry and tag:
    gcr.io/cadvisor/cadvisor:v0.49 -> [cadvisor, cadvisor]."""
    ref = image.split("@", 1)[0].lower()
    parts = ref.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]  # a registry
    parts[-1] = parts[-1].split(":", 1)[0]
    return [p for p in parts if p]


def _named(words: list[str], names: set[str]) -> str | None:
    # `postgres`, and variants like `postgres-ha` or `mysql_8`, but `redis-commander` is a
    # management UI: MONITORING is asked first.
    for w in reversed(words):
        if w in names:
            return w
        for n in names:
            if w.startswith((f"{n}-", f"{n}_")):
                return w
    return None


def role(c: Seen) -> Role:
    words = image_words(c.image)
    hit = _named(words, MONITORING) or _named([c.name.lower()], MONITORING)
    if hit:
        return Role(MONITOR, f"monitoring or management ({hit}): never stopped, "
                             "its data is not the app's")
    for kind, names, _ in STORES:
        hit = _named(words, names)
        if hit:
            return Role(kind, f"a {kind} (image {c.image})")
    for kind, _, ports in STORES:
        for port in c.exposed:
            if port in ports:
                return Role(kind, f"a {kind} (port {port}, {ports[port]}'s; image {c.image})")
    return Role(APP, f"the app (image {c.image})")


# --- mounts -----------------------------------------------------------------------------

# Host paths that are the machine's, not the app's.
SYSTEM_PATHS = ("/var/run/docker.sock", "/run/docker.sock", "/etc/localtime", "/etc/timezone",
                "/etc/hosts", "/etc/resolv.conf", "/etc/machine-id")
SYSTEM_TREES = ("/proc", "/sys", "/dev", "/run", "/var/run", "/var/lib/docker", "/boot",
                "/lib/modules", "/usr", "/etc/ssl", "/etc/ca-certificates")
# Where apps keep their code when it is mounted in from the host (a dev habit on servers).
CODE_DESTINATIONS = ("/app", "/src", "/code", "/usr/src/app", "/opt/app", "/srv/app",
                     "/var/www/html")

DATA = "data"
LEFT_OUT = "left out"


@dataclass(frozen=True)
class MountUse:
    verdict: str  # DATA or LEFT_OUT
    why: str


def system_path(path: str) -> bool:
    path = posixpath.normpath(path)
    return path == "/" or path in SYSTEM_PATHS or any(
        path == t or path.startswith(t + "/") for t in SYSTEM_TREES)


def mount_use(m: Mount, info: PathInfo | None) -> MountUse:
    """Whether a mount of a business container is data to copy, and why (not)."""
    if m.type == "volume":
        if m.anonymous:
            return MountUse(LEFT_OUT, f"anonymous volume at {m.destination}: Docker named it "
                            "itself, so its name differs on every host; name it "
                            "(`-v NAME:" + m.destination + "` or in the compose file) to copy it")
        return MountUse(DATA, f"named volume at {m.destination}")
    if m.type != "bind":
        return MountUse(LEFT_OUT, f"{m.type or 'unknown'} mount at {m.destination}: "
                        "nothing on disk to copy")
    if system_path(m.source):
        return MountUse(LEFT_OUT, f"a path of the machine itself, mounted at {m.destination}")
    if info is None or info.kind == "absent":
        return MountUse(LEFT_OUT, "absent on the host (or unreadable)")
    if info.kind == "file":
        what = "read-only config file" if not m.rw else "a single file (data.paths holds folders)"
        return MountUse(LEFT_OUT, f"{what}, mounted at {m.destination}")
    if not m.rw:
        return MountUse(LEFT_OUT, f"read-only folder at {m.destination}: config or code, "
                        "which a release or your deployment brings")
    if info.code:
        return MountUse(LEFT_OUT, f"source code (a project file at its top), mounted at "
                        f"{m.destination}")
    dest = posixpath.normpath(m.destination)
    if dest in CODE_DESTINATIONS:
        return MountUse(LEFT_OUT, f"mounted at {dest}, where apps keep their code")
    return MountUse(DATA, f"writable folder mounted at {m.destination}")
