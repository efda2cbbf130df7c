from __future__ import annotations

from ferryman.redact import Redactor, filter_noise, raw_output, tail


def test_noise_lines_dropped_others_kept() -> None:
    out = ("Loaded image: app:v2\n"
           "close - IO is still pending on closed socket. read:0, write:1, io:00000238\n"
           "Warning: Permanently added '172.30.30.57' (ED25519) to the list of known hosts.\n"
           "Error response from daemon: conflict")
    assert filter_noise(out) == "Loaded image: app:v2\nError response from daemon: conflict"


def test_secrets_masked_by_value_and_by_key() -> None:
    r = Redactor({"hunter22", "x"})
    assert r.text("login with hunter22 now") == "login with *** now"
    assert r.text("MYSQL_PASSWORD=abc123 other=1") == "MYSQL_PASSWORD=*** other=1"
    assert r.text('{"api_key": "zzz"}') == '{"api_key": "***"}'
    # Values shorter than 3 characters would mask half the text: they are left alone.
    assert r.text("x marks") == "x marks"
    assert r.data({"a": ["hunter22", 3], "b": {"c": "hunter22!"}}) == {
        "a": ["***", 3], "b": {"c": "***!"}}


def test_tail_and_raw_output() -> None:
    text = "\n".join(f"line {i}" for i in range(100))
    cut = tail(text, 10)
    assert cut.splitlines()[0] == "... (90 earlier lines cut)"
    assert cut.splitlines()[-1] == "line 99"
    assert raw_output("token=abc\nConnection to h closed.", Redactor()) == "token=***"
