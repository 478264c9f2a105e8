"""Helpers for page tests: pages are parsed (never compared with snapshots)."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from support import Api

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
JSON = {"Accept": "application/json"}
GTIN = "08936012345674"


class Page(HTMLParser):
    """Collects data-* attributes with the text inside their elements, <html lang>, the
    headings and the visible text (script, style and attribute values left out)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.lang = ""
        self.fields: dict[str, str] = {}
        self.text: list[str] = []
        self.headings: list[tuple[str, str]] = []
        self.roles: dict[str, str] = {}
        self.labels: list[str] = []
        self._open: list[tuple[str, str]] = []
        self._skip = 0
        self._heading: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "html":
            self.lang = values.get("lang") or ""
        if tag in ("script", "style"):
            self._skip += 1
        if tag in ("h1", "h2", "h3"):
            self._heading = tag
            self.headings.append((tag, ""))
        if values.get("role"):
            self.roles[values["role"] or ""] = tag
        if values.get("aria-label"):
            self.labels.append(values["aria-label"] or "")
        for name, value in attrs:
            if name.startswith("data-"):
                # data-field="lot" names a value; data-verdict="recalled" is one.
                key = value or "" if name == "data-field" else name[5:]
                if name != "data-field":
                    self.fields[key] = value or ""
                self._open.append((tag, key))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1
        if tag == self._heading:
            self._heading = None
        while self._open and self._open[-1][0] == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.text.append(data)
        if self._heading:
            tag, text = self.headings[-1]
            self.headings[-1] = (tag, text + data)
        for _, name in self._open:
            key = f"text:{name}"
            self.fields[key] = self.fields.get(key, "") + data

    @property
    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())

    @property
    def verdict(self) -> str:
        return self.fields.get("verdict", "")


class Form(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__()
        self.inputs: dict[str, str] = {}
        self.action = ""
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.action = values.get("action") or ""
        if tag == "input" and values.get("type") == "hidden":
            self.inputs[values.get("name") or ""] = values.get("value") or ""


def scan(api: Api, path: str, **headers: str) -> tuple[int, Page, Any]:
    answer = api.client.get(path, headers={**HTML, **headers})
    return answer.status_code, Page(answer.text), answer


def link(serial: str, lot: str = "L2601") -> str:
    return f"/01/{GTIN}/10/{lot}/21/{serial}"


def facts(api: Api, path: str) -> Any:
    answer = api.client.get(path, headers=JSON)
    assert answer.status_code == 200, answer.text
    return answer.json()
