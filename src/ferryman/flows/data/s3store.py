"""Off-site copies in an S3 bucket (data.offsite.s3): each archive streamed from the data
host over SSH through this process into a multipart upload (never onto the operator's disk),
its sha256 taken on the way and, once stored, read back from the bucket and compared with
the manifest; the manifest is put last, so a copy without one is incomplete and never
listed. Objects: PREFIX/PROJECT/ENV/ID/FILE. boto3 is needed only here (extra `s3`)."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any

from ...config.backups import Offsite
from ...data import archive as ar
from ...errors import BadInput, PreconditionFailed
from ...events import EventBus
from ...state import write_file
from ...transport import CommandFailed
from .plan import remove
from .site import DataMismatch, Site

CHUNK = 1 << 20


def _client(spec: Offsite) -> Any:
    try:
        import boto3
    except ImportError:
        raise PreconditionFailed("data.offsite.s3 needs boto3 on this machine",
                                 hint="pip install 'ferryman[s3]'") from None
    s3 = spec.s3
    assert s3 is not None
    return boto3.client(
        "s3", endpoint_url=s3.endpoint, region_name=s3.region,
        aws_access_key_id=s3.access_key.get_secret_value() if s3.access_key else None,
        aws_secret_access_key=s3.secret_key.get_secret_value() if s3.secret_key else None)


@dataclass
class S3Vault:
    spec: Offsite
    env: str
    project: str

    def __post_init__(self) -> None:
        self._s3: Any = None

    @property
    def bucket(self) -> str:
        assert self.spec.s3 is not None
        return self.spec.s3.bucket

    @property
    def label(self) -> str:
        return f"s3://{self.bucket}"

    @property
    def base(self) -> str:
        assert self.spec.s3 is not None
        return "/".join(p for p in (self.spec.s3.prefix.strip("/"), self.project, self.env) if p)

    def key(self, bid: str, name: str = "") -> str:
        return f"{self.base}/{bid}/{name}"

    def folder(self, bid: str) -> str:
        return f"{self.label}/{self.key(bid)}"

    async def call(self, method: str, **kw: Any) -> Any:
        if self._s3 is None:
            self._s3 = _client(self.spec)
        return await asyncio.to_thread(getattr(self._s3, method), **kw)

    async def _put(self, s: Site, path: str, key: str, bus: EventBus) -> tuple[str, int]:
        """Streams `path` on the data host into `key`: (sha256, bytes) as they passed."""
        assert self.spec.s3 is not None
        part_size = self.spec.s3.part_mb << 20
        proc = await s.host.open(["cat", "--", path])
        digest, sent, upload, parts = hashlib.sha256(), 0, None, []
        try:
            while True:
                buf = bytearray()
                while len(buf) < part_size and (chunk := await proc.read(CHUNK)):
                    buf += chunk
                if not buf and upload is not None:
                    break
                digest.update(buf)
                sent += len(buf)
                bus.emit("progress", task=key, description=f"s3 {key}", completed=sent,
                         total=None)
                if upload is None and len(buf) < part_size:  # small: one put
                    await self.call("put_object", Bucket=self.bucket, Key=key, Body=bytes(buf))
                    break
                if upload is None:
                    upload = (await self.call("create_multipart_upload", Bucket=self.bucket,
                                              Key=key))["UploadId"]
                n = len(parts) + 1
                got = await self.call("upload_part", Bucket=self.bucket, Key=key,
                                      UploadId=upload, PartNumber=n, Body=bytes(buf))
                parts.append({"PartNumber": n, "ETag": got["ETag"]})
                if len(buf) < part_size:
                    break
            res = await proc.wait()
            if not res.ok:
                raise CommandFailed(res, f"reading {path} on {s.label} failed")
            if upload is not None:
                await self.call("complete_multipart_upload", Bucket=self.bucket, Key=key,
                                UploadId=upload, MultipartUpload={"Parts": parts})
                upload = None
        finally:
            if upload is not None:
                await proc.abort()
                await self.call("abort_multipart_upload", Bucket=self.bucket, Key=key,
                                UploadId=upload)
        return digest.hexdigest(), sent

    async def _read_back(self, key: str) -> tuple[str, int]:
        body = (await self.call("get_object", Bucket=self.bucket, Key=key))["Body"]
        digest, size = hashlib.sha256(), 0
        while chunk := await asyncio.to_thread(body.read, CHUNK):
            digest.update(chunk)
            size += len(chunk)
        return digest.hexdigest(), size

    async def copy(self, s: Site, m: ar.Manifest, bus: EventBus) -> str:
        total = 0
        for item in m.items:
            sha, size = await self._put(s, f"{s.folder(m.id)}/{item.archive}",
                                        self.key(m.id, item.archive), bus)
            if (sha, size) != (item.sha256, item.archive_bytes):
                raise DataMismatch(f"{item.label}: {size} bytes with sha256 {sha} left "
                                   f"{s.label}, the manifest says {item.archive_bytes} with "
                                   f"sha256 {item.sha256}")
            total += size
        said = await self.verify(m)
        await self.call("put_object", Bucket=self.bucket, Key=self.key(m.id, ar.MANIFEST),
                        Body=m.to_json().encode())
        return f"{total} bytes {s.label} -> {self.folder(m.id)}; {said}"

    async def verify(self, m: ar.Manifest) -> str:
        """Reads every archive back from the bucket; each sha256 must be the manifest's."""
        bad = []
        for item in m.items:
            sha, _ = await self._read_back(self.key(m.id, item.archive))
            if sha != item.sha256:
                bad.append(f"{item.label}: sha256 {sha} != {item.sha256}")
        if bad:
            raise DataMismatch(f"copy of {m.id} in {self.label}: " + "; ".join(bad))
        return f"{len(m.items)} archive(s) read back from {self.label}: sha256 match"

    async def _keys(self, prefix: str) -> list[str]:
        keys, token = [], None
        while True:
            kw: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if token:
                kw["ContinuationToken"] = token
            page = await self.call("list_objects_v2", **kw)
            keys += [o["Key"] for o in page.get("Contents") or []]
            if not page.get("IsTruncated"):
                return keys
            token = page["NextContinuationToken"]

    async def list(self) -> list[ar.Manifest]:
        out = []
        for key in await self._keys(f"{self.base}/"):
            if key.endswith(f"/{ar.MANIFEST}"):
                body = (await self.call("get_object", Bucket=self.bucket, Key=key))["Body"]
                text = (await asyncio.to_thread(body.read)).decode()
                try:
                    out.append(ar.Manifest.parse(text))
                except (ValueError, TypeError, KeyError):
                    continue
        return sorted(out, key=lambda m: m.created)

    async def remove(self, bid: str) -> None:
        for key in await self._keys(self.key(bid)):
            await self.call("delete_object", Bucket=self.bucket, Key=key)

    async def prune(self, bus: EventBus) -> list[str]:
        old = ar.beyond_retention(await self.list(), self.spec.keep, None)
        for m in old:
            await self.remove(m.id)
        if old:
            bus.info(f"removed {len(old)} off-site copie(s) beyond keep={self.spec.keep} in "
                     f"{self.label}: " + ", ".join(m.id for m in old))
        return [m.id for m in old]

    async def fetch(self, s: Site, bid: str, bus: EventBus) -> ar.Manifest:
        found = {m.id: m for m in await self.list()}
        if bid not in found:
            raise BadInput(f"no off-site copy of {bid} in {self.label} (has: "
                           f"{', '.join(list(found)[-5:]) or 'none'})")
        m = found[bid]
        if (await s.host.run(["test", "-e", s.folder(bid)], timeout=30)).ok:
            raise BadInput(f"{s.label} still holds backup {bid} in {s.folder(bid)}: restore it "
                           "without --from-offsite")
        part = f"{s.base}/.{bid}.part"
        await s.host.run(remove([part]), timeout=120, check=True)
        try:
            for item in m.items:
                sha, size = await self._get(s, self.key(bid, item.archive),
                                            f"{part}/{item.archive}", m.compression)
                if (sha, size) != (item.sha256, item.archive_bytes):
                    raise DataMismatch(f"{item.label}: {size} bytes with sha256 {sha} reached "
                                       f"{s.label}, the manifest says {item.archive_bytes}")
            await s.host.run(write_file(f"{part}/{ar.MANIFEST}"), input=m.to_json().encode(),
                             timeout=30, check=True)
            await s.host.run(["mv", "-T", "--", part, s.folder(bid)], timeout=60, check=True)
        except BaseException:
            await s.host.run(remove([part]), timeout=120)
            raise
        bus.info(f"fetched off-site copy {bid} from {self.label} into {s.folder(bid)}: "
                 "sha256 match")
        return m

    async def _get(self, s: Site, key: str, out: str, compression: str) -> tuple[str, int]:
        """key -> `out` on the data host, hashed there as it is written."""
        body = (await self.call("get_object", Bucket=self.bucket, Key=key))["Body"]
        proc = await s.host.open(ar.receive(out, "", compression))
        try:
            while chunk := await asyncio.to_thread(body.read, CHUNK):
                await proc.write(chunk)
        except BaseException:
            await proc.abort()
            raise
        await proc.close_stdin()
        res = await proc.wait()
        if not res.ok:
            raise CommandFailed(res, f"writing {out} on {s.label} failed")
        _, _, sha, size = ar.parse_pack(res.stdout)
        return sha, size
