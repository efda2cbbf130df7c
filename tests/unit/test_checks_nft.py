"""The nftables ruleset parser, on `nft list ruleset` as printed by a real test host with
Docker's tables and a leftover `table inet firewalld` (the fault of source note 000)."""

from __future__ import annotations

from ferryman.checks import nft

# Captured from a test host (Debian 12, Docker 20.10 with iptables-nft) after
#   nft add table inet firewalld
#   nft add chain inet firewalld filter_FORWARD '{ type filter hook forward priority 0 ; }'
#   nft add rule inet firewalld filter_FORWARD reject with icmpx type host-unreachable
RULESET = """\
table ip nat {
	chain DOCKER {
		iifname "br-11d80754620f" counter packets 0 bytes 0 return
		iifname "docker0" counter packets 0 bytes 0 return
		iifname != "docker0" tcp dport 8080 counter packets 0 bytes 0 dnat to 172.18.0.2:8080
		iifname != "br-11d80754620f" tcp dport 8081 counter packets 0 bytes 0 dnat to 172.19.0.2:8080
	}

	chain POSTROUTING {
		type nat hook postrouting priority srcnat; policy accept;
		oifname != "br-11d80754620f" ip saddr 172.19.0.0/16 counter packets 0 bytes 0 masquerade
		oifname != "docker0" ip saddr 172.18.0.0/16 counter packets 0 bytes 0 masquerade
		ip saddr 172.18.0.2 ip daddr 172.18.0.2 tcp dport 8080 counter packets 0 bytes 0 masquerade
		ip saddr 172.19.0.2 ip daddr 172.19.0.2 tcp dport 8080 counter packets 0 bytes 0 masquerade
	}

	chain PREROUTING {
		type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local counter packets 5 bytes 300 jump DOCKER
	}

	chain OUTPUT {
		type nat hook output priority -100; policy accept;
		ip daddr != 127.0.0.0/8 fib daddr type local counter packets 0 bytes 0 jump DOCKER
	}
}
table ip filter {
	chain DOCKER {
		iifname != "docker0" oifname "docker0" ip daddr 172.18.0.2 tcp dport 8080 counter packets 0 bytes 0 accept
		iifname != "br-11d80754620f" oifname "br-11d80754620f" ip daddr 172.19.0.2 tcp dport 8080 counter packets 0 bytes 0 accept
	}

	chain DOCKER-ISOLATION-STAGE-1 {
		iifname "br-11d80754620f" oifname != "br-11d80754620f" counter packets 0 bytes 0 jump DOCKER-ISOLATION-STAGE-2
		iifname "docker0" oifname != "docker0" counter packets 0 bytes 0 jump DOCKER-ISOLATION-STAGE-2
		counter packets 40 bytes 2172 return
	}

	chain DOCKER-ISOLATION-STAGE-2 {
		oifname "br-11d80754620f" counter packets 0 bytes 0 drop
		oifname "docker0" counter packets 0 bytes 0 drop
		counter packets 0 bytes 0 return
	}

	chain DOCKER-USER {
		counter packets 40 bytes 2172 return
	}

	chain FORWARD {
		type filter hook forward priority filter; policy accept;
		counter packets 40 bytes 2172 jump DOCKER-USER
		counter packets 40 bytes 2172 jump DOCKER-ISOLATION-STAGE-1
		oifname "br-11d80754620f" ct state related,established counter packets 33 bytes 1752 accept
		oifname "br-11d80754620f" counter packets 7 bytes 420 jump DOCKER
		iifname "br-11d80754620f" oifname != "br-11d80754620f" counter packets 0 bytes 0 accept
		iifname "br-11d80754620f" oifname "br-11d80754620f" counter packets 7 bytes 420 accept
		oifname "docker0" ct state related,established counter packets 0 bytes 0 accept
		oifname "docker0" counter packets 0 bytes 0 jump DOCKER
		iifname "docker0" oifname != "docker0" counter packets 0 bytes 0 accept
		iifname "docker0" oifname "docker0" counter packets 0 bytes 0 accept
	}
}
table inet firewalld {
	chain filter_FORWARD {
		type filter hook forward priority filter; policy accept;
		reject with icmpx host-unreachable
	}
}
"""  # noqa: E501 (kept as printed)

CLEAN = RULESET[: RULESET.index("table inet firewalld")]

# The shape firewalld itself writes: helpers, sets with elements on several lines, braces in
# rules and in quoted comments; only its forward chain rejects.
FIREWALLD_SHAPED = """\
table inet firewalld {
\tct helper helper-tftp-udp {
\t\ttype "tftp" protocol udp
\t\tl3proto inet
\t}

\tset allowed {
\t\ttype ipv4_addr
\t\telements = { 10.1.0.1,
\t\t\t     10.1.0.2 }
\t}

\tchain raw_PREROUTING {
\t\ttype filter hook prerouting priority raw + 10; policy accept;
\t\tmeta nfproto ipv6 fib saddr . mark . iif oif missing drop
\t}

\tchain filter_INPUT {
\t\ttype filter hook input priority filter + 10; policy accept;
\t\tct state { established, related } accept
\t\treject with icmpx admin-prohibited comment "no {brace} trouble"
\t}

\tchain filter_FORWARD {
\t\ttype filter hook forward priority filter + 10; policy accept;
\t\tct state { established, related } accept
\t\tiifname "lo" accept
\t\treject with icmpx admin-prohibited
\t}
}
table ip6 firewalld {
\tchain nat_PREROUTING {
\t\ttype nat hook prerouting priority dstnat + 10; policy accept;
\t}
}
table inet filter {
\tchain forward {
\t\ttype filter hook forward priority filter; policy drop;
\t}
}
"""


def test_docker_tables_and_the_leftover() -> None:
    tables = nft.parse_ruleset(RULESET)
    assert [t.spec for t in tables] == ["ip nat", "ip filter", "inet firewalld"]
    nat, filt, fwd = tables
    assert nat.iptables_managed and filt.iptables_managed and not fwd.iptables_managed
    assert [c.name for c in filt.hooked("forward")] == ["FORWARD"]
    forward = filt.hooked("forward")[0]
    assert forward.policy == "accept" and forward.priority == "filter"
    assert len(forward.rules) == 10
    (chain,) = fwd.chains
    assert (chain.name, chain.hook, chain.policy) == ("filter_FORWARD", "forward", "accept")
    assert chain.rules == ["reject with icmpx host-unreachable"]
    assert chain.blocks


def test_residual_forward_is_found_only_when_present() -> None:
    tables = nft.parse_ruleset(RULESET)
    assert [t.spec for t in nft.residual_forward(tables)] == ["inet firewalld"]
    assert nft.residual_forward(nft.parse_ruleset(CLEAN)) == []
    # Docker's isolation drops live in iptables' own tables: not judged.
    assert nft.other_blocking(tables, "forward") == []


def test_describe_and_table_text_for_evidence() -> None:
    tables = nft.parse_ruleset(RULESET)
    fwd = tables[-1]
    assert nft.describe(fwd) == ("chain filter_FORWARD (hook forward, policy accept): "
                                 "reject with icmpx host-unreachable")
    text = nft.table_text(RULESET, fwd)
    assert text.splitlines()[0] == "table inet firewalld {"
    assert text.splitlines()[-1] == "}"
    assert "DOCKER" not in text


def test_firewalld_shaped_tables() -> None:
    tables = nft.parse_ruleset(FIREWALLD_SHAPED)
    assert [t.spec for t in tables] == ["inet firewalld", "ip6 firewalld", "inet filter"]
    inet = tables[0]
    assert [c.name for c in inet.chains] == ["raw_PREROUTING", "filter_INPUT", "filter_FORWARD"]
    fwd = inet.hooked("forward")[0]
    assert fwd.priority == "filter + 10"
    assert fwd.rules[-1] == "reject with icmpx admin-prohibited"
    assert [t.spec for t in nft.firewalld_tables(tables)] == ["inet firewalld", "ip6 firewalld"]
    # ip6 firewalld has no forward chain: a leftover, but not the one that cuts containers.
    assert [t.spec for t in nft.residual_forward(tables)] == ["inet firewalld"]
    ((table, chain),) = nft.other_blocking(tables, "forward")
    assert (table.spec, chain.name, chain.policy) == ("inet filter", "forward", "drop")


def test_empty_and_unreadable() -> None:
    assert nft.parse_ruleset("") == []
    assert nft.parse_ruleset("Error: Could not process rule: Operation not permitted\n") == []
