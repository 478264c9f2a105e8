"""The URI layer of GS1 Digital Link: scheme, host, path segments and percent-encoding."""

from __future__ import annotations

import ipaddress
import re
import string
from urllib.parse import quote

from ocop_trace.errors import BadLink


class DigitalLinkError(BadLink, ValueError):
    """A URI or value outside what the parser reads; the message says what is wrong."""


# RFC 3986 unreserved, reserved and '%': anything else must be percent-encoded to be in a URI.
URI_CHARS = frozenset(string.ascii_letters + string.digits + "-._~:/?#[]@!$&'()*+,;=%")
_HOST = re.compile(r"[A-Za-z0-9.-]+")
_PORT = re.compile(r":[0-9]{1,5}")
_HEX2 = re.compile(r"[0-9A-Fa-f]{2}")


def check_uri_chars(uri: str) -> None:
    for position, char in enumerate(uri, 1):
        if char not in URI_CHARS:
            raise DigitalLinkError(f"{char!r} at position {position} must be percent-encoded")


def split_scheme(uri: str) -> tuple[str, str]:
    for scheme in ("https", "http", "HTTPS", "HTTP"):
        if uri.startswith(scheme + "://"):
            return scheme.lower(), uri[len(scheme) + 3 :]
    raise DigitalLinkError("a Digital Link starts with http:// or https:// (or HTTP, HTTPS)")


def check_host(host: str) -> str:
    if not host:
        raise DigitalLinkError("the URI has no host name after the scheme")
    if host.startswith("["):
        literal, bracket, port = host[1:].partition("]")
        if "%" in literal:
            raise DigitalLinkError("IPv6 zone identifiers (the %25... part) are not allowed")
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            raise DigitalLinkError(f"[{literal}] is not an IPv6 address") from None
        if not bracket:
            raise DigitalLinkError("an IPv6 host needs its closing ']'")
    else:
        name, colon, port = host.partition(":")
        port = colon + port
        if not _HOST.fullmatch(name):
            raise DigitalLinkError(f"host {name!r} may use only letters, digits, '.' and '-'")
    if port and not (_PORT.fullmatch(port) and int(port[1:]) <= 65535):
        raise DigitalLinkError(f"{port!r} after the host is not a port number 0-65535")
    return host.lower()


def split_uri(uri: str) -> tuple[str, str, str, str]:
    """(scheme, host, path, query) of a http(s) URI whose characters were checked; no fragment."""
    check_uri_chars(uri)
    scheme, rest = split_scheme(uri)
    rest = rest.partition("#")[0]  # the fragment is for the browser, not part of the link
    rest, _, query = rest.partition("?")
    host, slash, path = rest.partition("/")
    return scheme, check_host(host), slash + path, query


def split_path(path: str, *, trailing_slash: bool = False) -> list[str]:
    """The segments of a path ("" or starting with "/"); one final '/' only if allowed."""
    if trailing_slash and len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    segments = path.split("/")[1:]
    if len(segments) > 1 and segments[-1] == "":
        raise DigitalLinkError("the path must not end with '/'")
    if "" in segments[:-1]:
        raise DigitalLinkError("the path has an empty segment ('//')")
    if any(c in "?#[]" for c in path):
        raise DigitalLinkError("the path cannot contain '?', '#', '[' or ']' unencoded")
    return [s for s in segments if s]


def join_stem(segments: list[str]) -> str:
    for segment in segments:
        decode(segment, f"path segment {segment!r}")  # refuse malformed escapes here too
    return "".join("/" + s for s in segments)


def decode(raw: str, where: str, *, plus_is_space: bool = False) -> str:
    if plus_is_space:  # form encoding, used in query strings only; '%2B' stays a '+'
        raw = raw.replace("+", " ")
    first, *rest = raw.split("%")
    data = bytearray(first.encode("ascii"))
    for part in rest:
        if not _HEX2.fullmatch(part[:2]):
            raise DigitalLinkError(f"{where}: '%' must start a %XX escape (a literal % is %25)")
        data.append(int(part[:2], 16))
        data += part[2:].encode("ascii")
    if 0 in data:
        raise DigitalLinkError(f"{where}: %00 (NUL) is not allowed")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DigitalLinkError(f"{where}: the percent-escapes are not UTF-8") from None


def encode(value: str) -> str:
    # Only the unreserved "-._" of CSET 82 stay as they are, as the DL spec requires.
    return quote(value, safe="")


def split_base(base: str) -> tuple[str, str]:
    """('scheme://host', stem) of a base URL for building links; a final '/' is dropped."""
    if any(c not in URI_CHARS for c in base):
        raise DigitalLinkError("the base URL has characters that must be percent-encoded")
    scheme, rest = split_scheme(base)
    host, slash, stem = rest.partition("/")
    host = check_host(host)
    return f"{scheme}://{host}", join_stem(split_path(slash + stem.rstrip("/")))
