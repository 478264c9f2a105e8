"""GS1 link types: the full URI (https://gs1.org/voc/pip) and the CURIE (gs1:pip) as one."""

from __future__ import annotations

import re

from ocop_trace.dl_uri import DigitalLinkError

GS1_VOCABULARY = "https://gs1.org/voc/"
_GS1_PREFIXES = ("https://gs1.org/voc/", "http://gs1.org/voc/", "https://www.gs1.org/voc/")
_TERM = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
SPECIAL = frozenset({"all", "linkset"})  # linkType values a resolver answers with a linkset


def normalise_link_type(value: str) -> str:
    """The CURIE form of a linkType: 'gs1:pip' for 'gs1:pip' and 'https://gs1.org/voc/pip'.

    'all' and 'linkset' are kept; another vocabulary's full URI is returned as it is.
    """
    value = value.strip()
    if value in SPECIAL:
        return value
    term = next((value[len(p) :] for p in (*_GS1_PREFIXES, "gs1:") if value.startswith(p)), None)
    if term is None:
        if "://" not in value:
            raise DigitalLinkError(f"linkType {value!r}: write gs1:TERM or a full URI")
        return value
    if not _TERM.fullmatch(term):
        raise DigitalLinkError(f"linkType {value!r}: {term!r} is not a GS1 vocabulary term")
    return f"gs1:{term}"


def link_type_uri(value: str) -> str:
    """The full URI of a linkType: 'https://gs1.org/voc/pip' for 'gs1:pip' or the URI itself."""
    curie = normalise_link_type(value)
    return GS1_VOCABULARY + curie[4:] if curie.startswith("gs1:") else curie
