"""Every configuration problem names its file, line, key path and what was expected."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ferryman.config import ConfigError, ConfigIssue, load_config

ADDRESS = "user@host[:port] or 'local'"


def write(tmp_path: Path, text: str, name: str = "ferryman.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[ConfigIssue]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ or {})
    return info.value.issues


def only(issues: list[ConfigIssue], key: str) -> ConfigIssue:
    found = [i for i in issues if i.key == key]
    assert len(found) == 1, "\n".join(map(str, issues))
    return found[0]


def host_problem(tmp_path: Path, address: str) -> ConfigIssue:
    issues = problems(
        tmp_path,
        f"""\
        project: p
        environments:
          prod:
            hosts:
              - address: {address!r}
        """,
    )
    assert len(issues) == 1, issues
    return only(issues, "environments.prod.hosts[0].address")


# --- whole-file problems --------------------------------------------------------------


def test_message_uses_the_path_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(
        tmp_path,
        """\
        project: p
        environments:
          prod:
            hosts:
              - address: root@:22
        """,
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config("ferryman.yml", {})
    assert str(info.value) == (
        "ferryman.yml:5: environments.prod.hosts[0].address: got 'root@:22'; "
        "expected user@host[:port] or 'local'"
    )


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    (issue,) = problems(
        tmp_path,
        """\
        project: p
        environments:
          prod:
            hosts: [{address: h}
          test: {}
        """,
    )
    assert issue.line == 5
    assert issue.key == ""
    assert "valid YAML" in issue.expected


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    (issue,) = problems(tmp_path, "project: a\nlog_dir: x\nproject: b\n")
    assert issue.line == 3
    assert 'duplicate key "project"' in issue.expected


def test_top_level_not_a_mapping(tmp_path: Path) -> None:
    (issue,) = problems(tmp_path, "- project\n- environments\n")
    assert issue.line == 1
    assert issue.value == "a list"
    assert "mapping" in issue.expected
    assert str(issue).endswith(
        "got a list; expected a mapping of keys (project, environments, ...) at the top level"
    )


def test_empty_file(tmp_path: Path) -> None:
    (issue,) = problems(tmp_path, "# nothing yet\n")
    assert issue.line is None and issue.key == ""
    assert "file is empty" in issue.expected
    assert str(issue).startswith(f"{tmp_path / 'ferryman.yml'}: expected")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yml"
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    (issue,) = info.value.issues
    assert issue.line is None
    assert str(issue) == f"{path}: expected an existing file (no such file)"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, {})
    assert "not a directory" in info.value.issues[0].expected


# --- keys -----------------------------------------------------------------------------


def test_unknown_top_level_key_lists_allowed_keys(tmp_path: Path) -> None:
    issues = problems(
        tmp_path,
        """\
        project: p
        environments:
          prod:
            hosts: [{address: h}]
        keep_release: 4
        """,
    )
    issue = only(issues, "keep_release")
    assert issue.line == 5
    assert issue.value is None
    assert "did you mean 'keep_releases'" in issue.expected
    assert "version, project, log_dir, ssh, environments" in issue.expected


def test_unknown_nested_key(tmp_path: Path) -> None:
    issues = problems(
        tmp_path,
        """\
        project: p
        environments:
          prod:
            hosts:
              - address: h
                identity: ~/.ssh/id
        """,
    )
    issue = only(issues, "environments.prod.hosts[0].identity")
    assert issue.line == 6
    assert "identity_file" in issue.expected and "unknown key" in issue.expected


def test_missing_required_top_level_key(tmp_path: Path) -> None:
    issues = problems(tmp_path, "log_dir: x\nenvironments:\n  prod:\n    hosts: [{address: h}]\n")
    issue = only(issues, "project")
    assert issue.line == 1
    assert "required key is missing" in issue.expected


def test_missing_nested_key_points_at_its_parent(tmp_path: Path) -> None:
    issues = problems(
        tmp_path,
        """\
        project: p
        environments:
          prod:
            hosts: [{address: h}]
          test:
            policy: {confirm: true}
        """,
    )
    issue = only(issues, "environments.test.hosts")
    assert issue.line == 5
    assert "required" in issue.expected


def test_bad_environment_name(tmp_path: Path) -> None:
    issues = problems(
        tmp_path,
        """\
        project: p
        environments:
          prod:
            hosts: [{address: h}]
          Staging:
            hosts: [{address: h}]
        """,
    )
    issue = only(issues, "environments.Staging")
    assert issue.line == 5
    assert issue.value == "'Staging'"
    assert "environment name" in issue.expected


def test_wrong_type_for_a_scalar_and_a_list(tmp_path: Path) -> None:
    issues = problems(
        tmp_path,
        """\
        project: p
        keep_releases: many
        environments:
          prod:
            hosts: [{address: h}]
            policy:
              allowed_tags: v*
              confirm: maybe
        """,
    )
    assert only(issues, "keep_releases").line == 2
    assert only(issues, "keep_releases").expected == "a whole number"
    tags = only(issues, "environments.prod.policy.allowed_tags")
    assert (tags.line, tags.value, tags.expected) == (7, "'v*'", "a list")
    confirm = only(issues, "environments.prod.policy.confirm")
    assert (confirm.line, confirm.expected) == (8, "true or false")


def test_wrong_version(tmp_path: Path) -> None:
    text = "version: 2\nproject: p\nenvironments: {a: {hosts: [{address: h}]}}\n"
    issues = problems(tmp_path, text)
    issue = only(issues, "version")
    assert (issue.line, issue.value, issue.expected) == (1, "2", "1")


def test_no_environments(tmp_path: Path) -> None:
    issues = problems(tmp_path, "project: p\nenvironments: {}\n")
    issue = only(issues, "environments")
    assert issue.line == 2
    assert "at least 1" in issue.expected


def test_all_issues_are_reported_in_line_order(tmp_path: Path) -> None:
    issues = problems(
        tmp_path,
        """\
        project: ""
        environments:
          prod:
            hosts:
              - address: "h:99999"
        guards:
          - file: relative.json
            key: base_url
            restart: [ghost]
        """,
    )
    assert [(i.line, i.key) for i in issues] == [
        (1, "project"),
        (5, "environments.prod.hosts[0].address"),
        (7, "guards[0].file"),
        (9, "guards[0].restart[0]"),
    ]


# --- addresses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "root@:22",
        "@host",
        "root@ho st",
        "host:",
        "[::1",
        "[zz]:22",
        "[::1]x",
        "a@b@c",
        "host/path",
        "",
        "user@",
    ],
)
def test_bad_host_address(tmp_path: Path, address: str) -> None:
    issue = host_problem(tmp_path, address)
    assert issue.line == 5
    assert issue.value == repr(address)
    assert issue.expected.startswith(ADDRESS)


@pytest.mark.parametrize("port", ["0", "65536", "99999", "abc", "-1"])
def test_bad_port(tmp_path: Path, port: str) -> None:
    issue = host_problem(tmp_path, f"root@host:{port}")
    assert issue.line == 5
    assert issue.value == repr(f"root@host:{port}")
    assert ADDRESS in issue.expected and "1 to 65535" in issue.expected


def test_jump_cannot_be_local(tmp_path: Path) -> None:
    issues = problems(
        tmp_path,
        """\
        project: p
        environments:
          prod:
            hosts:
              - address: h
                jump: local
        """,
    )
    issue = only(issues, "environments.prod.hosts[0].jump")
    assert issue.line == 6
    assert "not 'local'" in issue.expected


def test_duplicate_host_names_in_an_environment(tmp_path: Path) -> None:
    issues = problems(
        tmp_path,
        """\
        project: p
        environments:
          prod:
            hosts:
              - address: root@web
              - address: deploy@web:2222
        """,
    )
    issue = only(issues, "environments.prod.hosts[1].address")
    assert issue.line == 6
    assert "unique" in issue.expected


# --- durations and numbers ------------------------------------------------------------


@pytest.mark.parametrize("duration", ["3x", "-1", "-5s", "''", "m", "1m-30s", "true"])
def test_bad_duration(tmp_path: Path, duration: str) -> None:
    issues = problems(
        tmp_path,
        f"""\
        project: p
        ssh:
          connect_timeout: 10s
          command_timeout: {duration}
        environments:
          prod:
            hosts: [{{address: h}}]
        """,
    )
    issue = only(issues, "ssh.command_timeout")
    assert issue.line == 4
    assert issue.expected == "seconds or a duration like 30s, 2m"


def test_negative_retries(tmp_path: Path) -> None:
    issues = problems(
        tmp_path,
        """\
        project: p
        environments:
          prod:
            hosts: [{address: h}]
        services:
          api:
            health:
              http: http://127.0.0.1/health
              retries: -3
        """,
    )
    issue = only(issues, "services.api.health.retries")
    assert (issue.line, issue.value) == (9, "-3")
    assert issue.expected == "a number >= 1"


# --- health ---------------------------------------------------------------------------


def test_http_and_docker_together(tmp_path: Path) -> None:
    issues = problems(
        tmp_path,
        """\
        project: p
        environments:
          prod:
            hosts: [{address: h}]
        services:
          api:
            health:
              http: http://127.0.0.1/health
              docker: true
        """,
    )
    issue = only(issues, "services.api.health.docker")
    assert issue.line == 9
    assert "not both" in issue.expected


@pytest.mark.parametrize("url", ["127.0.0.1:8001/health", "ftp://h/x", "http://"])
def test_http_url_needs_scheme(tmp_path: Path, url: str) -> None:
    issues = problems(
        tmp_path,
        f"""\
        project: p
        environments:
          prod:
            hosts: [{{address: h}}]
        services:
          api:
            health:
              http: {url}
        """,
    )
    issue = only(issues, "services.api.health.http")
    assert (issue.line, issue.value) == (8, repr(url))
    assert "http:// or https://" in issue.expected


# --- data -----------------------------------------------------------------------------


def test_relative_data_paths(tmp_path: Path) -> None:
    issues = problems(
        tmp_path,
        """\
        project: p
        environments:
          prod:
            hosts: [{address: h}]
        data:
          paths:
            - /opt/app/data
            - opt/app/uploads
          backup_dir: backups
        """,
    )
    path = only(issues, "data.paths[1]")
    assert (path.line, path.value) == (8, "'opt/app/uploads'")
    assert "absolute path" in path.expected
    assert only(issues, "data.backup_dir").line == 9


def test_stop_and_never_stop_overlap(tmp_path: Path) -> None:
    issues = problems(
        tmp_path,
        """\
        project: p
        environments:
          prod:
            hosts: [{address: h}]
        data:
          stop: [api, db]
          never_stop:
            - portainer
            - db
        """,
    )
    issue = only(issues, "data.never_stop[1]")
    assert (issue.line, issue.value) == (9, "'db'")
    assert "not also in data.stop" in issue.expected


# --- cross references -----------------------------------------------------------------


def test_guard_restart_names_unknown_service(tmp_path: Path) -> None:
    issues = problems(
        tmp_path,
        """\
        project: p
        environments:
          prod:
            hosts: [{address: h}]
        services:
          backend: {}
        guards:
          - file: /opt/app/config.json
            key: base_url
            restart: [backend, frontend]
        """,
    )
    issue = only(issues, "guards[0].restart[1]")
    assert (issue.line, issue.value) == (10, "'frontend'")
    assert "service defined under services: backend" in issue.expected


def test_guard_environment_unknown(tmp_path: Path) -> None:
    issues = problems(
        tmp_path,
        """\
        project: p
        environments:
          prod:
            hosts: [{address: h}]
        guards:
          - file: /opt/app/config.json
            key: base_url
            environments:
              - prod
              - staging
        """,
    )
    issue = only(issues, "guards[0].environments[1]")
    assert (issue.line, issue.value) == (10, "'staging'")
    assert "environment name: prod" in issue.expected


def test_guard_key_and_format(tmp_path: Path) -> None:
    issues = problems(
        tmp_path,
        """\
        project: p
        environments:
          prod:
            hosts: [{address: h}]
        guards:
          - file: /opt/app/config.json
            format: yaml
            key: "a..b"
        """,
    )
    assert only(issues, "guards[0].format").line == 7
    assert only(issues, "guards[0].format").expected == "'json'"
    assert only(issues, "guards[0].key").line == 8


def test_service_hosts_label_unknown(tmp_path: Path) -> None:
    issues = problems(
        tmp_path,
        """\
        project: p
        environments:
          prod:
            hosts:
              - address: root@10.0.0.1
                name: web1
              - address: root@10.0.0.2
        services:
          api:
            hosts: [web1, 10.0.0.2, web3]
        """,
    )
    issue = only(issues, "services.api.hosts[2]")
    assert (issue.line, issue.value) == (10, "'web3'")
    assert "10.0.0.2, web1" in issue.expected


def test_duplicate_container_names(tmp_path: Path) -> None:
    issues = problems(
        tmp_path,
        """\
        project: p
        environments:
          prod:
            hosts: [{address: h}]
        services:
          api: {}
          api-v2:
            container: api
        """,
    )
    issue = only(issues, "services.api-v2.container")
    assert (issue.line, issue.value) == (8, "'api'")
    assert "already used by service 'api'" in issue.expected


def test_odd_service_name_is_quoted_in_key_path(tmp_path: Path) -> None:
    issues = problems(
        tmp_path,
        """\
        project: p
        environments:
          prod:
            hosts: [{address: h}]
        services:
          "my api": {}
        """,
    )
    issue = only(issues, "services['my api']")
    assert issue.line == 6


# --- variables and secrets ------------------------------------------------------------


def test_undefined_variable_names_it_without_printing_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        project: p
        environments:
          prod:
            hosts:
              - address: root@10.0.0.1
                password: ${OTHER}-${PROD_PASSWORD}
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, {"OTHER": "known-secret"})
    (issue,) = info.value.issues
    assert issue.line == 6
    assert issue.key == "environments.prod.hosts[0].password"
    assert issue.value is None
    assert "PROD_PASSWORD" in issue.expected and "undefined" in issue.expected
    assert "known-secret" not in str(info.value)


def test_malformed_variable_reference(tmp_path: Path) -> None:
    issues = problems(
        tmp_path,
        """\
        project: ${1BAD}
        environments:
          prod:
            hosts: [{address: h}]
        """,
    )
    issue = only(issues, "project")
    assert issue.line == 1
    assert "${NAME}" in issue.expected


def test_secret_is_masked_in_error_messages(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        project: p
        environments:
          prod:
            hosts:
              - address: root@${PROD_HOST}:70000
                password: 123456
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, {"PROD_HOST": "10.20.30.40"})
    text = str(info.value)
    assert "10.20.30.40" not in text and "123456" not in text
    address = only(info.value.issues, "environments.prod.hosts[0].address")
    assert (address.line, address.value) == (5, "'root@***:70000'")
    password = only(info.value.issues, "environments.prod.hosts[0].password")
    assert (password.line, password.value) == (6, "***")


def test_bad_dotenv_line_names_dotenv_line_not_content(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("GOOD=1\nthis line leaks hunter2\n")
    path = write(tmp_path, "project: ${GOOD}\nenvironments: {prod: {hosts: [{address: h}]}}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    (issue,) = info.value.issues
    assert issue.file == str(tmp_path / ".env")
    assert issue.line == 2
    assert "KEY=VALUE" in issue.expected
    assert "hunter2" not in str(info.value)


def test_control_character_and_bad_encoding_name_the_line(tmp_path: Path) -> None:
    (tmp_path / "ctl.yml").write_bytes(b"project: p\nlog_dir: x\x01\n")
    (tmp_path / "enc.yml").write_bytes(b"project: p\nlog_dir: \xff\n")
    for name in ("ctl.yml", "enc.yml"):
        with pytest.raises(ConfigError) as info:
            load_config(tmp_path / name, {})
        (issue,) = info.value.issues
        assert issue.line == 2, issue


def test_secret_is_masked_in_listed_choices(tmp_path: Path) -> None:
    issues = problems(
        tmp_path,
        """\
        project: p
        environments:
          prod:
            hosts:
              - address: root@${PROD_HOST}
        services:
          api:
            hosts: [web9]
        """,
        {"PROD_HOST": "db.internal.example"},
    )
    issue = only(issues, "services.api.hosts[0]")
    assert issue.line == 8
    assert "db.internal.example" not in str(issue)
    assert issue.expected.endswith(": ***")


def test_dump_of_a_stopped_container_is_refused(tmp_path) -> None:
    from ferryman.config import ConfigError, load_config

    path = tmp_path / "ferryman.yml"
    path.write_text(
        "project: p\nenvironments:\n  test:\n    hosts: [{address: h}]\n"
        "data:\n  stop: [db]\n  dumps:\n    - container: db\n      engine: postgres\n"
        "      database: app\n")
    try:
        load_config(path)
    except ConfigError as exc:
        text = str(exc)
    else:
        raise AssertionError("accepted")
    assert "ferryman.yml:8: data.dumps[0].container: got 'db'" in text
    assert "not in data.stop" in text
