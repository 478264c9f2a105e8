"""ledger.policy: tlog-policy files and the quorum check of cosigned checkpoints."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.cosignature import Cosigner
from ledger.keys import public_bytes
from ledger.note import NoteSigner, format_verifier_key, sign_note
from ledger.policy import Policy, PolicyError, check_quorum, parse_policy

TEXT = "example.com/log\n5\n" + "A" * 43 + "=\n"
LOG = NoteSigner("example.com/log", Ed25519PrivateKey.generate())
X = [Cosigner(f"x{i}.example", Ed25519PrivateKey.generate()) for i in range(1, 4)]
Y = [Cosigner(f"y{i}.example", Ed25519PrivateKey.generate()) for i in range(1, 4)]


def vkey_of(signer: NoteSigner) -> str:
    return format_verifier_key(signer.name, public_bytes(signer.key))


# The spec's example policy, with real keys.
EXAMPLE = f"""
# comment lines and blank lines are ignored
log {vkey_of(LOG)} https://example.com/log

\twitness X1 {X[0].public_key.vkey}
witness X2 {X[1].public_key.vkey}   https://x2.example/
witness X3 {X[2].public_key.vkey}
group X-witnesses 2 X1 X2 X3

witness Y1 {Y[0].public_key.vkey}
witness Y2 {Y[1].public_key.vkey}
witness Y3 {Y[2].public_key.vkey}
group Y-witnesses any Y1 Y2 Y3

group X-and-Y all X-witnesses Y-witnesses
quorum X-and-Y
"""


def note_with(*cosigners: Cosigner, time: int = 1_700_000_000) -> str:
    return sign_note(TEXT, [LOG]) + "".join(c.cosign(TEXT, time) for c in cosigners)


def test_the_spec_example_parses() -> None:
    policy = parse_policy(EXAMPLE)
    assert [log.origin for log in policy.logs] == ["example.com/log"]
    assert policy.logs[0].url == "https://example.com/log"
    assert [w.name for w in policy.witnesses] == ["X1", "X2", "X3", "Y1", "Y2", "Y3"]
    assert policy.witness("X2").url == "https://x2.example/"
    assert policy.witness("X1").url is None
    assert [(g.name, g.threshold) for g in policy.groups] == [
        ("X-witnesses", 2),
        ("Y-witnesses", 1),
        ("X-and-Y", 2),
    ]
    assert policy.quorum == "X-and-Y"


@pytest.mark.parametrize(
    ("signers", "met"),
    [
        ((), False),
        ((X[0], X[1]), False),  # no Y
        ((X[0], Y[0]), False),  # one X is not two
        ((X[0], X[2], Y[1]), True),
        ((X[0], X[1], X[2], Y[0], Y[1], Y[2]), True),
    ],
)
def test_nested_groups(signers: tuple[Cosigner, ...], met: bool) -> None:
    result = check_quorum(note_with(*signers), parse_policy(EXAMPLE))
    assert result.met is met
    assert set(result.cosigned) == {f"{c.name[0].upper()}{c.name[1]}" for c in signers}
    assert result.invalid == ()


def test_k_of_n_and_the_result() -> None:
    witnesses = parse_policy(EXAMPLE).witnesses[:3]
    policy = Policy.k_of_n(witnesses, 2)
    assert policy.describe() == "2 of X1, X2, X3"
    one = check_quorum(note_with(X[1]), policy)
    assert (one.met, one.cosigned) == (False, ("X2",))
    two = check_quorum(note_with(X[2], X[0], time=1_800_000_000), policy)
    assert (two.met, two.cosigned) == (True, ("X1", "X3"))
    assert two.timestamps == {"X1": 1_800_000_000, "X3": 1_800_000_000}
    assert check_quorum(note_with(), Policy.k_of_n(witnesses, 0)).met
    with pytest.raises(PolicyError):
        Policy.k_of_n(witnesses, 4)


def test_a_cosignature_of_another_checkpoint_does_not_count() -> None:
    policy = Policy.k_of_n(parse_policy(EXAMPLE).witnesses[:3], 1)
    other = TEXT.replace("\n5\n", "\n6\n")
    stolen = X[0].cosign(other, 1_700_000_000)
    result = check_quorum(sign_note(TEXT, [LOG]) + stolen, policy)
    assert (result.met, result.cosigned, result.invalid) == (False, (), ("X1",))


def test_a_bad_cosignature_by_a_policy_witness_fails_the_note() -> None:
    policy = Policy.k_of_n(parse_policy(EXAMPLE).witnesses[:3], 1)
    stolen = X[2].cosign(TEXT.replace("\n5\n", "\n6\n"), 1_700_000_000)
    result = check_quorum(note_with(X[0], X[1]) + stolen, policy)
    assert result.cosigned == ("X1", "X2")
    assert result.invalid == ("X3",)
    assert result.met is False


def test_witnesses_outside_the_policy_are_ignored() -> None:
    stranger = Cosigner("stranger.example", Ed25519PrivateKey.generate())
    policy = Policy.k_of_n(parse_policy(EXAMPLE).witnesses[:3], 1)
    assert check_quorum(note_with(stranger), policy).cosigned == ()


def test_a_witness_only_file_needs_no_quorum_when_asked() -> None:
    logs = f"log {vkey_of(LOG)}\n"
    assert parse_policy(logs, require_quorum=False).logs[0].origin == "example.com/log"
    with pytest.raises(PolicyError, match="no quorum"):
        parse_policy(logs)


W1, W2 = X[0].public_key.vkey, X[1].public_key.vkey


@pytest.mark.parametrize(
    ("text", "what"),
    [
        (f"witness a {W1}\nquorum a\nquorum a\n", "second quorum"),
        (f"quorum a\nwitness a {W1}\n", "quorum names"),
        (f"witness a {W1}\nwitness a {W2}\nquorum a\n", "defined twice"),
        (f"witness a {W1}\nwitness b {W1}\nquorum a\n", "duplicate witness key"),
        (f"witness none {W1}\nquorum none\n", "reserved"),
        (f"witness a {W1}\ngroup g 2 a\nquorum g\n", "threshold"),
        (f"witness a {W1}\ngroup g 0 a\nquorum g\n", "threshold"),
        (f"witness a {W1}\ngroup g 01 a\nquorum g\n", "threshold"),
        (f"witness a {W1}\ngroup g any a a\nquorum g\n", "twice"),
        (f"witness a {W1}\ngroup g any b\nquorum g\n", "not defined"),
        (f"witness a {W1}\ngroup g any none\nquorum g\n", "not defined"),
        (f"witness a {vkey_of(LOG)}\nquorum a\n", "type"),  # a log key is not a cosigner key
        (f"log {W1}\nquorum none\n", "type"),
        (f"witness a {W1}\x0b\nquorum a\n", "control"),
        ("witness a\nquorum none\n", "not a policy line"),
        ("quorum none # trailing comment\n", "not a policy line"),
        ("logs x\nquorum none\n", "not a policy line"),
        ("quorum none\n" + "#" * 70_000, "too large"),
    ],
)
def test_malformed_policies_are_refused(text: str, what: str) -> None:
    with pytest.raises(PolicyError, match=what):
        parse_policy(text)


def test_non_utf8_is_refused() -> None:
    with pytest.raises(PolicyError, match="UTF-8"):
        parse_policy(b"# \xff\nquorum none\n")
