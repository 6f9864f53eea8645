"""Built-in redaction patterns: what goes, what stays."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from letta_otel.mapping.redact import Redactor, compile_patterns

R = Redactor()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.def-ghi_jkl", "Authorization: Bearer [REDACTED:bearer]"),
        ("BEARER abcdefgh12", "BEARER [REDACTED:bearer]"),
        ("key sk-proj-AbCdEfGhIjKlMnOpQrSt", "key [REDACTED:api_key]"),
        ("sk-ant-api03-AAAAAAAAAAAAAAAAAAAA!", "[REDACTED:api_key]!"),
        ("xai-" + "a" * 24, "[REDACTED:api_key]"),
        ("id AKIAIOSFODNN7EXAMPLE.", "id [REDACTED:api_key]."),
        ("ghp_" + "Z" * 36, "[REDACTED:api_key]"),
        ("AIza" + "b" * 35, "[REDACTED:api_key]"),
        ("xoxb-1234567890-abc", "[REDACTED:api_key]"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "jwt [REDACTED:api_key]"),
        (
            "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\nafter",
            "[REDACTED:api_key]\nafter",
        ),
        ("api_key=abcdef123", "api_key=[REDACTED:secret]"),
        ('{"password": "hunter22"}', '{"password": "[REDACTED:secret]"}'),
        ("DB_PASSWORD=correct-horse", "DB_PASSWORD=[REDACTED:secret]"),
        ("client_secret: 'zzzzzzzz'", "client_secret: '[REDACTED:secret]'"),
        ("mail jane.doe+x@example.co.uk.", "mail [REDACTED:email]."),
        ("a@b.io,c@d.org", "[REDACTED:email],[REDACTED:email]"),
        ("card 4111-1111-1111-1111 ok", "card [REDACTED:card] ok"),
        ("amex 378282246310005", "amex [REDACTED:card]"),
        ("İstanbul Bearer abcdefgh1234 İ", "İstanbul Bearer [REDACTED:bearer] İ"),
    ],
)
def test_redacted(text: str, expected: str) -> None:
    redacted, count = R.text(text)
    assert redacted == expected
    assert count == expected.count("[REDACTED")


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1112",  # fails Luhn
        "1795301739000000000",  # a nanosecond timestamp
        "call 14111111111111111",  # part of a longer number
        "run-d74da3da-b028-44c4-8ac7-66b9ccabfbe7",
        "12345678-1234-4234-8234-123456789012",
        "the task-force risk-assessment",
        "myapi_key=abcdefgh",  # not a key name on its own
        "user@localhost and @mentions",
        "max_tokens: 16384, temperature: 1.0",
        "a short key",
    ],
)
def test_left_alone(text: str) -> None:
    assert R.text(text) == (text, 0)


def test_secret_named_json_keys_are_blanked_whatever_the_value() -> None:
    value = {"api_key": "x", "nested": [{"Authorization": {"a": 1}, "q": "ok"}], "token": None}
    redacted, count = R.value(value)
    assert redacted == {
        "api_key": "[REDACTED:secret]",
        "nested": [{"Authorization": "[REDACTED:secret]", "q": "ok"}],
        "token": None,
    }
    assert count == 2


def test_user_patterns_run_after_the_built_ins() -> None:
    redactor = Redactor(compile_patterns([r"ACCT-\d{4}", r"\b"]))  # \b matches only empty
    assert redactor.text("ACCT-1234 and a@b.io") == ("[REDACTED] and [REDACTED:email]", 2)


def test_lone_surrogates_become_encodable() -> None:
    text, _ = R.text("ok \ud83d end")
    text.encode()


_noise = st.text(st.sampled_from(" \n\t,;:()[]{}<>\"'"), min_size=1, max_size=3)
_filler = st.text(st.sampled_from("abc xyz 123 ."), max_size=40)
_secrets = st.sampled_from(
    [
        "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx",
        "jane.doe@example.com",
        "4111 1111 1111 1111",
        "AKIAIOSFODNN7EXAMPLE",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
    ]
)


@given(parts=st.lists(st.tuples(_filler, _noise, _secrets, _noise), min_size=1, max_size=5))
def test_planted_secrets_never_survive_and_redaction_is_idempotent(
    parts: list[tuple[str, str, str, str]],
) -> None:
    text = "".join(a + b + c + d for a, b, c, d in parts)
    redacted, count = R.text(text)
    for _, _, secret, _ in parts:
        assert secret not in redacted
    assert count >= len({p[2] for p in parts})
    assert R.text(redacted) == (redacted, 0)


def test_remembered_error_texts_are_redacted_like_any_text_and_bounded() -> None:
    redactor = Redactor(compile_patterns([r"tok-\d+"]))
    texts = [f"call {i} failed: api_key=sk-ant-{'x' * 40} tok-{i}" for i in range(100)]
    for text in texts + texts[-5:]:  # the last ones asked for twice: remembered
        assert redactor.error_text(text) == redactor.text(text)
    assert redactor.error_text(texts[-1])[1] >= 2  # the key and the user pattern at least
    assert len(redactor._recent) <= 32
    assert texts[-1] in redactor._recent and texts[0] not in redactor._recent
    huge = "Traceback\n" + "  frame\n" * 5000 + "sk-ant-" + "y" * 40
    assert redactor.error_text(huge) == redactor.text(huge)
    assert huge not in redactor._recent  # too long to keep
    assert Redactor() == Redactor()  # the memory is not part of the value
