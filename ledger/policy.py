"""C2SP tlog-policy files (logs, witnesses, groups, quorum) and the quorum check of a note."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ledger.cosignature import CosignerKey, cosignatures_in, parse_cosigner_vkey
from ledger.errors import LedgerError
from ledger.note import NoteVerifier, parse_verifier_key

NONE = "none"  # the predefined name: a quorum that needs no cosignature
MAX_POLICY_BYTES = 64 * 1024
# tlog-policy asks implementations to support at least 32 of each; a few times that is
# plenty for a province's councils and keeps a hostile file from costing much.
MAX_ITEMS = 256
_WHITESPACE = re.compile(r"[ \t]+")  # the spec's whitespace: ASCII space and tab only
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_THRESHOLD = re.compile(r"[1-9][0-9]{0,3}")


class PolicyError(LedgerError):
    reason = "policy"


@dataclass(frozen=True)
class PolicyLog:
    """A log the policy accepts: its checkpoint key (the key name is its origin)."""

    key: NoteVerifier
    url: str | None = None

    @property
    def origin(self) -> str:
        return self.key.name


@dataclass(frozen=True)
class PolicyWitness:
    """A witness: its name in this policy, its cosigner key, and its submission prefix."""

    name: str
    key: CosignerKey
    url: str | None = None


@dataclass(frozen=True)
class Group:
    name: str
    threshold: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class Policy:
    logs: tuple[PolicyLog, ...]
    witnesses: tuple[PolicyWitness, ...]
    groups: tuple[Group, ...]
    quorum: str = NONE
    _by_name: dict[str, PolicyWitness] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {w.name: w for w in self.witnesses})

    @classmethod
    def k_of_n(cls, witnesses: Sequence[PolicyWitness], k: int) -> Policy:
        """Any k of these witnesses (k = 0: none needed): `verify --witness … --quorum K`."""
        if not 0 <= k <= len(witnesses):
            raise PolicyError("quorum out of range", expected=f"0..{len(witnesses)}", found=k)
        text = "".join(f"witness {w.name} {w.key.vkey} {w.url or ''}\n" for w in witnesses)
        if k:
            group = "quorum"
            while any(w.name == group for w in witnesses):
                group += "_"
            text += f"group {group} {k} {' '.join(w.name for w in witnesses)}\nquorum {group}\n"
        else:
            text += f"quorum {NONE}\n"
        return parse_policy(text)

    def witness(self, name: str) -> PolicyWitness:
        return self._by_name[name]

    def satisfied(self, cosigned: Iterable[str]) -> bool:
        """Whether witnesses with these names meet the quorum (groups evaluated in order)."""
        met = {name for name in cosigned if name in self._by_name}
        for group in self.groups:  # a group refers only to names defined before it
            if sum(1 for m in group.members if m in met) >= group.threshold:
                met.add(group.name)
        return self.quorum == NONE or self.quorum in met

    def describe(self) -> str:
        """The quorum in words, for reports: 'none', a witness name, or 'k of a, b, c'."""
        if self.quorum == NONE or self.quorum in self._by_name:
            return self.quorum
        group = next(g for g in self.groups if g.name == self.quorum)
        return f"{group.threshold} of {', '.join(group.members)}"


def parse_policy(data: str | bytes, *, require_quorum: bool = True) -> Policy:
    """Parse a tlog-policy file. `require_quorum=False` accepts a file of log lines alone,
    which is what a witness reads to learn the logs it witnesses."""
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > MAX_POLICY_BYTES:
        raise PolicyError("policy file too large", expected=MAX_POLICY_BYTES, found=len(raw))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(
            "policy file is not UTF-8", expected="UTF-8", found=f"offset {exc.start}"
        ) from None
    builder = _Builder()
    for number, line in enumerate(text.split("\n"), 1):
        if m := _FORBIDDEN.search(line):
            raise PolicyError(
                f"line {number}: control character",
                expected="tab, newline and printable characters",
                found=f"0x{ord(m.group()):02x}",
            )
        words = _WHITESPACE.split(line.strip(" \t"))
        if words == [""] or words[0].startswith("#"):
            continue
        try:
            builder.add(words)
        except LedgerError as exc:
            raise PolicyError(
                f"line {number}: {exc.message}", expected=exc.expected, found=exc.found
            ) from None
    return builder.build(require_quorum)


class _Builder:
    def __init__(self) -> None:
        self.logs: list[PolicyLog] = []
        self.witnesses: list[PolicyWitness] = []
        self.groups: list[Group] = []
        self.names: set[str] = set()
        self.publics: set[bytes] = set()
        self.quorum: str | None = None

    def add(self, words: list[str]) -> None:
        keyword, args = words[0], words[1:]
        if keyword == "log" and len(args) in (1, 2):
            key = parse_verifier_key(args[0])
            self._new_key(key.public, "log")
            self.logs.append(PolicyLog(key, _url(args)))
        elif keyword == "witness" and len(args) in (2, 3):
            cosigner = parse_cosigner_vkey(args[1])
            self._new_name(args[0])
            self._new_key(cosigner.public, "witness")
            self.witnesses.append(PolicyWitness(args[0], cosigner, _url(args[1:])))
        elif keyword == "group" and len(args) >= 3:
            self._group(args[0], args[1], args[2:])
        elif keyword == "quorum" and len(args) == 1:
            if self.quorum is not None:
                raise PolicyError("a second quorum line", expected="exactly one", found=2)
            if args[0] != NONE and args[0] not in self.names:
                raise PolicyError(
                    "quorum names nothing defined above", expected="a name", found=args[0]
                )
            self.quorum = args[0]
        else:
            raise PolicyError(
                "not a policy line",
                expected="log VKEY [URL] | witness NAME VKEY [URL] | group NAME K NAME... | "
                "quorum NAME",
                found=" ".join(words)[:80],
            )
        if max(len(self.logs), len(self.witnesses), len(self.groups)) > MAX_ITEMS:
            raise PolicyError("too many policy lines", expected=f"<= {MAX_ITEMS} each", found=">")

    def _group(self, name: str, threshold: str, members: list[str]) -> None:
        for member in members:
            if member == NONE or member not in self.names:
                raise PolicyError(
                    "group member not defined above", expected="a witness or group", found=member
                )
        if len(set(members)) != len(members):
            raise PolicyError("a group lists a member twice", expected="distinct", found=members)
        n = len(members)
        k = {"all": n, "any": 1}.get(threshold)
        if k is None and _THRESHOLD.fullmatch(threshold):
            k = int(threshold)
        if k is None or not 1 <= k <= n:
            raise PolicyError(
                "bad group threshold", expected=f"all, any or 1..{n}", found=threshold
            )
        self._new_name(name)
        self.groups.append(Group(name, k, tuple(members)))

    def _new_name(self, name: str) -> None:
        if name == NONE or name in self.names:
            raise PolicyError("name defined twice or reserved", expected="a new name", found=name)
        self.names.add(name)

    def _new_key(self, public: bytes, what: str) -> None:
        # Duplicate means the same public key, whatever name or id wraps it.
        if public in self.publics:
            raise PolicyError(f"duplicate {what} key", expected="distinct keys", found=public.hex())
        self.publics.add(public)

    def build(self, require_quorum: bool) -> Policy:
        if self.quorum is None and require_quorum:
            raise PolicyError("no quorum line", expected="quorum NAME (or quorum none)", found=0)
        return Policy(
            tuple(self.logs), tuple(self.witnesses), tuple(self.groups), self.quorum or NONE
        )


def _url(args: list[str]) -> str | None:
    return args[1] if len(args) == 2 else None


@dataclass(frozen=True)
class QuorumResult:
    """Which of the policy's witnesses validly cosigned a note, and whether that is enough."""

    met: bool
    cosigned: tuple[str, ...]  # policy names, in policy order
    timestamps: Mapping[str, int]
    invalid: tuple[str, ...]  # witnesses whose line in the note does not verify
    required: str


def check_quorum(note: str | bytes, policy: Policy) -> QuorumResult:
    """The cosignatures in a checkpoint note against the policy. A bad cosignature by a
    policy witness fails the whole note (signed-note: a client SHOULD reject a note with a
    bad signature by a known key). The log's own signature is not checked here."""
    valid, invalid = cosignatures_in(note, [w.key for w in policy.witnesses])
    names = {w.key: w.name for w in policy.witnesses}
    cosigned = tuple(w.name for w in policy.witnesses if w.key in valid)
    bad = tuple(names[key] for key in invalid)
    return QuorumResult(
        met=not bad and policy.satisfied(cosigned),
        cosigned=cosigned,
        timestamps={names[key]: ts for key, ts in valid.items()},
        invalid=bad,
        required=policy.describe(),
    )
