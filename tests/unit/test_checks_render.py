"""Findings as the operator sees them: trimmed evidence, the table per host, the JSON, the
exit code."""

from __future__ import annotations

from rich.console import Console

from ferryman.checks import Evidence, Finding, Fix, HostReport, Report, Status
from ferryman.checks.findings import fail, ok, short_command, trim, warn
from ferryman.checks.runner import FixRecord
from ferryman.cli.doctor import host_table
from ferryman.transport import Result

PROBE = Result("prod-1", ["sh", "-c", "\npid=$1 ip=$2 port=$3 t=$4 name=$5\n" + "x" * 80,
                          "ferryman-probe", "395", "172.19.0.3", "8080", "3", "shop-api"], 1,
               "", "ferryman-tcp: connect: No route to host\n"
                   "ferryman-tcp: line 1: /dev/tcp/172.19.0.3/8080: No route to host\n")


def text_of(table: object) -> str:
    console = Console(record=True, width=160, color_system=None)
    console.print(table)
    return console.export_text()


def test_trim_keeps_the_end() -> None:
    long = "\n".join(f"line {n}" for n in range(30))
    cut = trim(long, lines=5)
    assert cut.splitlines() == ["... (25 earlier lines cut)", "line 25", "line 26", "line 27",
                                "line 28", "line 29"]
    assert trim("x" * 300, width=20) == "x" * 17 + "..."


def test_evidence_names_the_script_and_its_arguments() -> None:
    ev = Evidence.of(PROBE)
    assert ev.command == "sh -c '...' ferryman-probe 395 172.19.0.3 8080 3 shop-api"
    assert ev.exit == 1 and ev.output.endswith("/dev/tcp/172.19.0.3/8080: No route to host")
    assert short_command(["docker", "inspect", "web"]) == "docker inspect web"
    timed = Result("h", ["nft", "list", "ruleset"], -1, "", "", timed_out=True)
    assert Evidence.of(timed).exit is None and "(timed out)" in Evidence.of(timed).output


def _findings() -> list[Finding]:
    async def apply() -> str:
        return "done"

    found = [
        ok("host", "ssh", "connected as root in 0.12s"),
        ok("host", "kernel", "kernel 6.1", evidence=[Evidence("uname -srm", "Linux 6.1 x86_64")]),
        fail("networks", "api", "shop-api -> shop-db 172.19.0.3:8080 (shop_default): no route "
             "to host", evidence=[Evidence.of(PROBE)],
             fix=Fix("look for a filter on the forward hook")),
        fail("firewall", "firewalld leftovers", "table inet firewalld is still hooked on forward",
             evidence=[Evidence("nft list ruleset", "table inet firewalld {\n}", 0)],
             fix=Fix("delete table inet firewalld", safe=True, apply=apply)),
        warn("ports", "port 80", "port 80 is held by httpd (pid 3813)",
             fix=Fix("ferryman proxy-config prod --domain DOMAIN")),
    ]
    for f in found:
        f.env, f.host = "prod", "prod-1"
    return found


def test_table_groups_by_check_with_evidence_and_fix_under_problems() -> None:
    text = text_of(host_table("prod", "prod-1", _findings()))
    assert "prod / prod-1" in text
    firsts = [ln.split()[0] for ln in text.splitlines() if ln.strip()]
    assert firsts.count("host") == 1  # the check's name once for its group
    assert "$ sh -c '...' ferryman-probe 395 172.19.0.3 8080 3 shop-api  (exit 1)" in text
    assert "/dev/tcp/172.19.0.3/8080: No route to host" in text
    assert "fix: delete table inet firewalld (safe: --fix applies it)" in text
    assert "fix: look for a filter on the forward hook" in text
    assert "fix: ferryman proxy-config prod --domain DOMAIN" in text
    assert "Linux 6.1 x86_64" not in text  # evidence of an OK finding stays in the JSON


def test_json_and_exit_codes() -> None:
    report = Report([HostReport("prod", "prod-1", findings=_findings())])
    data = report.to_dict()
    assert data["ok"] is False and data["exit_code"] == 1
    assert data["summary"] == {"OK": 2, "WARN": 1, "FAIL": 2}
    assert data["hosts"] == [{"env": "prod", "host": "prod-1", "reachable": True,
                              "status": "FAIL"}]
    fw = data["findings"][3]
    assert fw["fix"] == {"text": "delete table inet firewalld", "safe": True}
    assert fw["evidence"] == [{"command": "nft list ruleset", "output": "table inet firewalld "
                               "{\n}", "exit": 0}]
    assert [f.subject for f in report.pending] == ["firewalld leftovers"]

    healthy = Report([HostReport("test", "test-1", findings=_findings()[:2])])
    assert healthy.exit_code == 0
    gone = Report([*healthy.hosts, HostReport("prod", "prod-1", reachable=False)])
    assert gone.exit_code == 3


def test_fix_record_is_proven_by_the_checks_run_again() -> None:
    finding = _findings()[3]
    rec = FixRecord(finding, applied=True, result="deleted table inet firewalld",
                    rechecked={"firewall": "OK", "networks": "OK"},
                    after=[ok("firewall", "firewalld leftovers", "no firewalld table")])
    assert rec.proven
    data = rec.to_dict()
    assert data["before"] == {"status": "FAIL", "summary": finding.summary}
    assert data["after"] == [{"status": "OK", "subject": "firewalld leftovers",
                              "summary": "no firewalld table"}]
    rec.rechecked["networks"] = str(Status.FAIL)
    assert not rec.proven
    assert not FixRecord(finding, error="boom").proven
