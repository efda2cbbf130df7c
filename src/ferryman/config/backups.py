"""The ferryman.yml keys of backups that run themselves: `schedules:` and `data.offsite`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_core import PydanticCustomError

from ..schedule import cron

CRON_EXPECTED = ("a cron time: 5 fields (minute hour day-of-month month day-of-week, in UTC) "
                 "like '30 2 * * *', or @daily, @weekly")


def _cron(value: str) -> str:
    try:
        cron.parse(value)
    except cron.CronError as exc:
        raise PydanticCustomError("ferryman", f"{CRON_EXPECTED} ({exc})") from None
    return value


CronTime = Annotated[str, AfterValidator(_cron)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Schedule(_Model):
    """What runs unattended for one environment (its key under `schedules`)."""

    backup: CronTime | None = None  # a backup, verified (sha256 re-read) once written
    verify: CronTime | None = None  # re-read the newest backup's sha256
    drill: CronTime | None = None  # verify, and unpack into scratch and count
    offsite: bool = False  # copy each scheduled backup to data.offsite, verified there

    def jobs(self) -> dict[str, str]:
        """job -> its cron time, for the jobs set."""
        return {k: v for k, v in (("backup", self.backup), ("verify", self.verify),
                                  ("drill", self.drill)) if v}


class S3(_Model):
    """An S3 bucket (MinIO, or any S3-compatible store). Keys: ${VARIABLES}, never literal."""

    bucket: Annotated[str, Field(min_length=3)]
    prefix: str = ""  # objects are PREFIX/PROJECT/ENV/ID/FILE
    endpoint: str | None = None  # e.g. http://minio:9000; None: AWS
    region: str = "us-east-1"
    access_key: SecretStr | None = None  # None: the machine's own AWS credentials
    secret_key: SecretStr | None = None
    part_mb: int = Field(default=16, ge=5, le=512)  # multipart part size


class Offsite(_Model):
    """Where copies of the backups go, away from the data host's disk: the first host of
    another environment of this file (a NAS, the TEST server, a backup box), or an S3
    bucket. One of `env` and `s3`."""

    env: Annotated[str, Field(min_length=1)] | None = None
    s3: S3 | None = None
    dir: Annotated[str, Field(pattern=r"^/")] = "/var/lib/ferryman/offsite"
    keep: int = Field(default=14, ge=1)

    @model_validator(mode="after")
    def _one_place(self) -> Offsite:
        if (self.env is None) == (self.s3 is None):
            raise PydanticCustomError("ferryman", "one of env (a host) and s3 (a bucket)")
        return self


def cross_issues(data: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], object, str]]:
    """(location, value, expected) for keys of these sections naming what is not there."""
    envs = data.get("environments") if isinstance(data.get("environments"), Mapping) else {}
    assert isinstance(envs, Mapping)
    names = ", ".join(sorted(map(str, envs))) or "(none defined)"
    out: list[tuple[tuple[str | int, ...], object, str]] = []
    schedules = data.get("schedules")
    section = data.get("data") if isinstance(data.get("data"), Mapping) else {}
    assert isinstance(section, Mapping)
    offsite = section.get("offsite") if isinstance(section.get("offsite"), Mapping) else None
    if isinstance(schedules, Mapping):
        for env, sched in schedules.items():
            if env not in envs:
                out.append((("schedules", env, "[key]"), env, f"an environment name: {names}"))
            if isinstance(sched, Mapping) and sched.get("offsite") is True and offsite is None:
                out.append((("schedules", env, "offsite"), True,
                            "data.offsite set (where the copies go)"))
    if offsite is not None:
        target = offsite.get("env")
        if isinstance(target, str) and target not in envs:
            out.append((("data", "offsite", "env"), target, f"an environment name: {names}"))
    return out


class Restic(_Model):
    """The restic engine: volumes and folders read as folders (restic dedupes them, where a
    tar stream dedupes poorly) into a repository that restic on the data host reaches."""

    # sftp:user@host:/path (the data host's own ssh client and keys), or any restic URL
    repository: Annotated[str, Field(min_length=1)]
    password_file: Annotated[str, Field(pattern=r"^/")]  # on the data host
    keep: int = Field(default=14, ge=1)  # restic forget --keep-last
    # restic check --read-data-subset: the share of the data read back as the verify
    check_subset: Annotated[str, Field(pattern=r"^(\d+(\.\d+)?%|\d+/\d+)$")] = "5%"
    sftp_command: str | None = None  # restic -o sftp.command=... (a port, a key)
