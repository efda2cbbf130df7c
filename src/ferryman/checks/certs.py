"""certs (with --domain): the certificate the host serves for the domain, as a visitor gets it,
and the nginx configuration that should serve it.

ferryman connects from the operator's machine to the host's address on 443 (or --tls-port)
with the domain as SNI, once verifying (the system's trust store and the name, as a browser)
and once not, to read the certificate even when it is bad. On the host, it reads the nginx
files that name the domain, finds the server block and its `ssl_certificate`, and compares
that file's certificate with the one served: a renewed file that nginx was never reloaded
for is a classic.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from ..state import read_file
from . import commands as cc
from .context import HostContext
from .findings import Evidence, Finding, Fix, fail, ok, warn
from .leaks import is_loopback

NAME = "certs"
TIMEOUT = 8.0
FAIL_DAYS = 7
WARN_DAYS = 21
NGINX_DIRS = ("/etc/nginx", "/www/server/panel/vhost/nginx", "/www/server/nginx/conf",
              "/usr/local/nginx/conf")


@dataclass
class Served:
    der: bytes | None = None
    verify_error: str | None = None  # None: a browser would accept it
    error: str | None = None  # no TLS answer at all
    protocol: str | None = None


@dataclass
class CertFacts:
    subject: str
    issuer: str
    names: list[str]
    not_before: datetime
    not_after: datetime
    fingerprint: str  # SHA-256, hex
    self_signed: bool

    def days_left(self, now: datetime | None = None) -> float:
        return (self.not_after - (now or datetime.now(UTC))).total_seconds() / 86400


def facts(cert: x509.Certificate) -> CertFacts:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        names = []
    cns = [str(a.value) for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    return CertFacts(cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(),
                     names or cns, cert.not_valid_before_utc, cert.not_valid_after_utc,
                     cert.fingerprint(hashes.SHA256()).hex(), cert.issuer == cert.subject)


def name_matches(domain: str, names: list[str]) -> bool:
    """RFC 6125: exact, or a wildcard standing for one leftmost label."""
    d = domain.lower().rstrip(".")
    for n in (x.lower().rstrip(".") for x in names):
        if n == d:
            return True
        if n.startswith("*.") and "." in d and d.split(".", 1)[1] == n[2:]:
            return True
    return False


def fetch(address: str, port: int, domain: str, timeout: float = TIMEOUT) -> Served:
    """The certificate served at address:port for `domain`, verified and then not."""
    def handshake(context: ssl.SSLContext) -> tuple[bytes | None, str | None]:
        with socket.create_connection((address, port), timeout=timeout) as sock, \
                context.wrap_socket(sock, server_hostname=domain) as tls:
            return tls.getpeercert(binary_form=True), tls.version()

    try:
        der, proto = handshake(ssl.create_default_context())
        return Served(der, None, None, proto)
    except ssl.SSLCertVerificationError as exc:
        verify_error = exc.verify_message or str(exc)
    except (OSError, ssl.SSLError) as exc:
        return Served(error=f"{type(exc).__name__}: {exc}")
    loose = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    loose.check_hostname = False
    loose.verify_mode = ssl.CERT_NONE
    try:
        der, proto = handshake(loose)
    except (OSError, ssl.SSLError) as exc:
        return Served(verify_error=verify_error, error=f"{type(exc).__name__}: {exc}")
    return Served(der, verify_error, None, proto)


def chain_problem(verify_error: str | None) -> str | None:
    """What the verification error says of the chain, in a sentence; None when it is not
    about the chain."""
    if not verify_error:
        return None
    low = verify_error.lower()
    if "self-signed" in low or "self signed" in low:
        return f"{verify_error}: browsers refuse it"
    if "unable to get local issuer" in low or "unable to verify the first" in low:
        return (f"{verify_error}: the intermediate certificates are missing; serve the full "
                "chain (fullchain.pem, not cert.pem)")
    if "expired" in low or "hostname mismatch" in low or "not yet valid" in low:
        return None
    return verify_error


def judge(c: CertFacts, domain: str, verify_error: str | None,
          now: datetime | None = None) -> tuple[str, list[str]]:
    """(status, problems) of a served certificate."""
    problems, status = [], "OK"
    days = c.days_left(now)
    if days < 0:
        problems.append(f"expired {-days:.0f} days ago ({c.not_after:%Y-%m-%d %H:%M} UTC)")
    elif days < FAIL_DAYS:
        problems.append(f"expires in {days:.1f} days ({c.not_after:%Y-%m-%d %H:%M} UTC)")
    elif days < WARN_DAYS:
        problems.append(f"expires in {days:.0f} days ({c.not_after:%Y-%m-%d}): renewal is "
                        "late (certbot renews 30 days ahead)")
        status = "WARN"
    if not name_matches(domain, c.names):
        problems.append(f"it names {', '.join(c.names) or 'nothing'}, not {domain}")
    chain = chain_problem(verify_error)
    if chain:
        problems.append(f"chain: {chain}")
    if any(not p.startswith("expires in") or days < FAIL_DAYS for p in problems):
        status = "FAIL"
    return status, problems


def describe(c: CertFacts) -> str:
    return (f"subject {c.subject}; names {', '.join(c.names) or '-'}; issuer {c.issuer}; "
            f"valid {c.not_before:%Y-%m-%d %H:%M} to {c.not_after:%Y-%m-%d %H:%M} UTC; "
            f"sha256 {c.fingerprint[:16]}...")


# --- nginx ---------------------------------------------------------------------------------

@dataclass
class ServerBlock:
    file: str
    line: int
    names: list[str] = field(default_factory=list)
    listen: list[str] = field(default_factory=list)
    certificate: str | None = None
    certificate_line: int | None = None


def server_blocks(path: str, text: str) -> list[ServerBlock]:
    """The `server { }` blocks of an nginx file with their names, listens and certificate."""
    blocks: list[ServerBlock] = []
    depth, current, current_depth = 0, None, 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0]
        stripped = line.strip()
        if current is None and re.match(r"server\s*\{", stripped):
            current, current_depth = ServerBlock(path, n), depth
        elif current is not None and depth == current_depth + 1:
            words = stripped.rstrip(";").split()
            if words[:1] == ["server_name"]:
                current.names += words[1:]
            elif words[:1] == ["listen"]:
                current.listen.append(" ".join(words[1:]))
            elif words[:1] == ["ssl_certificate"] and len(words) > 1:
                current.certificate, current.certificate_line = words[1].strip("'\""), n
        depth += line.count("{") - line.count("}")
        if current is not None and depth <= current_depth:
            blocks.append(current)
            current = None
    return blocks


def serving(blocks: list[ServerBlock], domain: str, port: int) -> list[ServerBlock]:
    def tls(b: ServerBlock) -> bool:
        return any(re.search(rf"(^|:){port}\b", x) or "ssl" in x.split() for x in b.listen)
    return [b for b in blocks if tls(b) and name_matches(domain, b.names)]


async def _nginx(ctx: HostContext, served: CertFacts | None, domain: str,
                 port: int) -> Finding:
    listing = await ctx.run(cc.nginx_files(domain, NGINX_DIRS))
    has_nginx = any(ln.startswith("nginx ") for ln in listing.stdout.splitlines()
                    if not ln.startswith("\036"))
    files = cc.split_files(listing.stdout)
    blocks = [b for path, text in files.items() for b in server_blocks(path, text)]
    mine = serving(blocks, domain, port)
    names = ", ".join(files) or "none"
    if not mine:
        if not files and not has_nginx:
            return ok(NAME, "nginx", f"no nginx on this host and no nginx file names {domain}: "
                      "the certificate is served by something else",
                      evidence=[ctx.evidence(listing, "(nothing)")])
        return warn(NAME, "nginx", f"no nginx server block serves {domain} with TLS (files "
                    f"naming it: {names})", evidence=[ctx.evidence(listing, "\n".join(
                        f"{b.file}:{b.line}: server_name {' '.join(b.names)}; listen "
                        f"{'; '.join(b.listen)}" for b in blocks) or "(no server block)")],
                    fix=Fix(f"add `listen {port} ssl;` and `ssl_certificate` to the server block "
                            f"of {domain}, then `nginx -t && nginx -s reload`"),
                    data={"files": list(files)})
    b = mine[0]
    where = f"{b.file}:{b.certificate_line or b.line}"
    data: dict[str, Any] = {"file": b.file, "line": b.certificate_line or b.line,
                            "certificate": b.certificate, "server_names": b.names}
    shown = f"{where}: ssl_certificate {b.certificate}"
    if not b.certificate:
        return fail(NAME, "nginx", f"{b.file}:{b.line}: the server block of {domain} has no "
                    "ssl_certificate", evidence=[ctx.evidence(listing, shown)], data=data,
                    fix=Fix("add ssl_certificate and ssl_certificate_key to it"))
    read = await ctx.run(read_file(b.certificate))
    try:
        chain = x509.load_pem_x509_certificates(read.stdout.encode()) if read.ok else []
    except ValueError:
        chain = []
    ev = [ctx.evidence(listing, shown)]
    if not chain:
        return warn(NAME, "nginx", f"{where} names {b.certificate}, which cannot be read as a "
                    "PEM certificate", evidence=[*ev, ctx.evidence(read)], data=data,
                    fix=Fix(f"check {b.certificate} (nginx -t says what nginx thinks)"))
    leaf = facts(chain[0])
    data.update({"file_fingerprint": leaf.fingerprint, "file_not_after": leaf.not_after
                 .isoformat(), "file_certificates": len(chain)})
    ev.append(ctx.evidence(read, describe(leaf) + f"; {len(chain)} certificate(s) in the "
                                                  "file"))
    if served is not None and served.fingerprint != leaf.fingerprint:
        return fail(NAME, "nginx", f"{where} names {b.certificate} (valid to "
                    f"{leaf.not_after:%Y-%m-%d}), but the host serves another certificate "
                    f"(valid to {served.not_after:%Y-%m-%d}): nginx was not reloaded since "
                    "the file changed, or something else answers on the port",
                    evidence=ev, data=data,
                    fix=Fix("`nginx -t && nginx -s reload` on the host; if it still differs, "
                            f"see who listens on {port} (`ss -tlnp`)"))
    if len(chain) == 1 and not leaf.self_signed:
        return warn(NAME, "nginx", f"{where} serves {b.certificate}, which holds the "
                    "certificate alone, without its intermediates", evidence=ev, data=data,
                    fix=Fix("point ssl_certificate at the full chain (fullchain.pem)"))
    return ok(NAME, "nginx", f"{where}: ssl_certificate {b.certificate} is the certificate "
              "served", evidence=ev, data=data)


async def run(ctx: HostContext) -> list[Finding]:
    domain, port = ctx.domain, ctx.tls_port
    if not domain:
        return [ok(NAME, "-", "no --domain given: no certificate to look at")]
    spec = ctx.cfg.environments[ctx.env].host(ctx.label)
    address = "127.0.0.1" if spec is None or spec.is_local else spec.hostname
    target = f"{address}:{port}"
    if spec is not None and not spec.is_local and (is_loopback(address) or spec.jump):
        how = "through a jump host" if spec.jump else f"at {address} (a tunnel?)"
        return [warn(NAME, domain, f"this host is reached {how}: its port {port} cannot be "
                     "reached from this machine the way SSH is; nothing checked",
                     fix=Fix("run doctor from a machine that reaches the host directly"))]
    served = await asyncio.to_thread(fetch, address, port, domain)
    how = f"TLS to {target}, SNI {domain}, from this machine"
    if served.der is None:
        return [fail(NAME, domain, f"no TLS answer on {target}: {served.error}",
                     evidence=[Evidence(how, served.error or "")],
                     fix=Fix(f"see who listens on {port} (`ferryman doctor --check ports`), and "
                             "the firewall / security group for it"),
                     data={"address": address, "port": port, "error": served.error}),
                await _nginx(ctx, None, domain, port)]
    cert = facts(x509.load_der_x509_certificate(served.der))
    status, problems = judge(cert, domain, served.verify_error)
    verified = served.verify_error or "verified: trusted chain, name matches"
    ev = [Evidence(how, f"{served.protocol}; {describe(cert)}\nverification: {verified}")]
    data = {"address": address, "port": port, "names": cert.names, "issuer": cert.issuer,
            "not_after": cert.not_after.isoformat(), "days_left": round(cert.days_left(), 2),
            "fingerprint": cert.fingerprint, "verify_error": served.verify_error,
            "self_signed": cert.self_signed, "problems": problems}
    if status == "OK":
        found = ok(NAME, domain, f"{target} serves a trusted certificate for {domain}, valid "
                   f"to {cert.not_after:%Y-%m-%d} ({cert.days_left():.0f} days)", evidence=ev,
                   data=data)
    else:
        maker = fail if status == "FAIL" else warn
        found = maker(NAME, domain, f"{target} serves for {domain} a certificate that "
                      + "; ".join(problems), evidence=ev, data=data,
                      fix=Fix("renew it (`certbot renew`, or your panel's SSL page) for "
                              f"{domain} with its full chain, then `nginx -s reload`"))
    return [found, await _nginx(ctx, cert, domain, port)]
