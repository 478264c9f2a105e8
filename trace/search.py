"""The catalogue's search: one folding rule, the database's own full-text index, the filters.

Text is folded in Python (diacritics dropped, đ as d, lower case) both when a product is
indexed and when a query is read, so "mien dong" finds "Miến dong" on either database and
no database extension is needed: SQLite answers from an FTS5 table, PostgreSQL from a GIN
index on the folded text's `tsvector` (both made by migration 0012). The projection keeps
`product_search` filled in the same transaction as the product rows it describes.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, and_, column, delete, func, insert, literal_column, select, text

from ocop_trace import ocop
from ocop_trace.models import PRODUCER, PRODUCT, PRODUCT_SEARCH, RATING

PAGE_SIZE = 24
MAX_QUERY = 100  # characters of a search read; a longer one is cut, not refused
MAX_TERMS = 8
_NOT_WORD = re.compile(r"[^0-9a-z]+")


def fold(value: str) -> str:
    """ "Miến dong Đặc sản" -> "mien dong dac san": what is indexed and what is searched."""
    decomposed = unicodedata.normalize("NFD", value.replace("đ", "d").replace("Đ", "D"))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_NOT_WORD.split(plain.lower())).strip()


def terms(query: str) -> list[str]:
    """The words of a typed search, folded; each matches words that start with it."""
    return fold(query[:MAX_QUERY]).split()[:MAX_TERMS]


# -- kept by the projection ---------------------------------------------------------------
def index_product(conn: Connection, product_id: str) -> None:
    """(Re)write a product's searchable text from its row and its producer's."""
    row = conn.execute(
        select(
            PRODUCT.c.name_vi,
            PRODUCT.c.name_en,
            PRODUCT.c.product_set,
            PRODUCER.c.name,
            PRODUCER.c.current_commune,
            PRODUCER.c.current_province,
            PRODUCER.c.certified_district,
            PRODUCER.c.certified_province,
        )
        .join(PRODUCER, PRODUCER.c.id == PRODUCT.c.producer_id)
        .where(PRODUCT.c.id == product_id)
    ).one()
    body = fold(" ".join(str(v) for v in row if v))
    conn.execute(delete(PRODUCT_SEARCH).where(PRODUCT_SEARCH.c.product_id == product_id))
    conn.execute(insert(PRODUCT_SEARCH).values(product_id=product_id, body=body))


def index_producer(conn: Connection, producer_id: str) -> None:
    """A producer's name or address changed: its products' text changes with it."""
    for product_id in conn.execute(
        select(PRODUCT.c.id).where(PRODUCT.c.producer_id == producer_id)
    ).scalars():
        index_product(conn, product_id)


# -- read by the home page ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Filters:
    """What a visitor asked for; every field already checked (see `Filters.read`)."""

    query: str = ""
    stars: int | None = None
    sector: str = ""
    province: str = ""
    commune: str = ""
    page: int = 1

    @classmethod
    def read(cls, params: Any) -> Filters:
        """From a query string: anything unknown is ignored rather than refused."""
        stars = params.get("stars", "")
        sector = params.get("sector", "")
        page = params.get("page", "")
        return cls(
            query=_plain(params.get("q", "")),
            stars=int(stars) if stars in ("1", "2", "3", "4", "5") else None,
            sector=sector if sector in ocop.SECTORS else "",
            province=_plain(params.get("province", "")),
            commune=_plain(params.get("commune", "")),
            page=min(int(page), 10_000) if page.isdigit() and int(page) > 0 else 1,
        )


def _plain(value: str) -> str:
    """A typed value as a filter takes it: no control characters (PostgreSQL refuses NUL in
    text), at most MAX_QUERY characters."""
    return "".join(c for c in value[:MAX_QUERY] if c.isprintable()).strip()


@dataclass(frozen=True, slots=True)
class Found:
    items: list[dict[str, Any]]
    total: int
    pages: int


def _in_force(rating: Any, day: str) -> Any:
    return and_(
        rating.c.revoked_index.is_(None), rating.c.issued_on <= day, rating.c.expires_on > day
    )


def stars_now(today: date, product_id: Any = PRODUCT.c.id) -> Any:
    """A product's stars in force today, as a column: those of its latest rating neither
    revoked nor expired (as the scan page decides it), found through the ratings' product
    index for each row shown, or NULL."""
    rating, day = RATING.alias("rating_now"), today.isoformat()
    return (
        select(rating.c.stars)
        .where(rating.c.product_id == product_id, _in_force(rating, day))
        .order_by(rating.c.id.desc())
        .limit(1)
        .correlate_except(rating)
        .scalar_subquery()
    )


def rated(today: date, stars: int) -> Any:
    """The ids of products whose rating in force today has these stars, worked out once per
    query: a rating in force with no later one in force (an anti-join on the product index)."""
    day = today.isoformat()
    current, later = RATING.alias("current_rating"), RATING.alias("later_rating")
    newer = select(later.c.id).where(
        later.c.product_id == current.c.product_id, later.c.id > current.c.id, _in_force(later, day)
    )
    return select(current.c.product_id).where(
        current.c.stars == stars, _in_force(current, day), ~newer.exists()
    )


def matching(conn: Connection, words: list[str]) -> Any:
    """The ids of products whose text has every word (as a word's start), as a subquery."""
    if conn.dialect.name == "postgresql":
        query = " & ".join(f"{w}:*" for w in words)
        return select(PRODUCT_SEARCH.c.product_id).where(
            literal_column("to_tsvector('simple', product_search.body)").op("@@")(
                func.to_tsquery("simple", query)
            )
        )
    query = " ".join(f'"{w}"*' for w in words)  # words are [0-9a-z]+: nothing to escape
    return (
        text(
            "SELECT product_search.product_id FROM product_fts "
            "JOIN product_search ON product_search.rowid = product_fts.rowid "
            "WHERE product_fts MATCH :match"
        )
        .bindparams(match=query)
        .columns(column("product_id"))
    )


def find(conn: Connection, filters: Filters, today: date, size: int = PAGE_SIZE) -> Found:
    """One page of the catalogue, in the order of the names (an index walk: the stars in
    force are looked up for the page's rows only)."""
    conditions = []
    words = terms(filters.query)
    if words:
        # Worked out once, first: the planner cannot tell how many products a word finds.
        found = matching(conn, words).cte("matches").prefix_with("MATERIALIZED")
        conditions.append(PRODUCT.c.id.in_(select(found.c.product_id)))
    if filters.sector:
        conditions.append(PRODUCT.c.sector == filters.sector)
    if filters.province:
        conditions.append(PRODUCER.c.current_province == filters.province)
    if filters.commune:
        conditions.append(PRODUCER.c.current_commune == filters.commune)
    if filters.stars is not None:
        conditions.append(PRODUCT.c.id.in_(rated(today, filters.stars)))
    joined = PRODUCT.join(PRODUCER, PRODUCER.c.id == PRODUCT.c.producer_id)
    columns = (
        PRODUCT.c.id,
        PRODUCT.c.name_vi,
        PRODUCT.c.name_en,
        PRODUCT.c.sector,
        PRODUCT.c.product_set,
        PRODUCT.c.image_url,
        PRODUCT.c.image_sha256,
        PRODUCT.c.producer_id,
        PRODUCER.c.name.label("producer"),
        PRODUCER.c.current_commune.label("commune"),
        PRODUCER.c.current_province.label("province"),
    )
    # One producer per product: the count joins it only to filter by its place.
    counted = joined if filters.province or filters.commune else PRODUCT
    count = select(func.count()).select_from(counted).where(*conditions)
    offset = (filters.page - 1) * size
    ordered = (PRODUCT.c.name_vi, PRODUCT.c.id)
    if words:
        # A search reads the full-text index once: the page and its count in one query,
        # the stars looked up for the page's rows only.
        page = (
            select(*columns, func.count().over().label("total"))
            .select_from(joined)
            .where(*conditions)
            .order_by(*ordered)
            .limit(size)
            .offset(offset)
            .subquery("page")
        )
        query = select(page, stars_now(today, page.c.id).label("stars")).order_by(
            page.c.name_vi, page.c.id
        )
        items = [dict(r) for r in conn.execute(query).mappings()]
        if items:
            total = int(items[0]["total"])
        else:  # past the last page: no row carries the count
            total = conn.execute(count).scalar_one() if offset else 0
    else:
        total = conn.execute(count).scalar_one()
        query = (
            select(*columns, stars_now(today).label("stars"))
            .select_from(joined)
            .where(*conditions)
            .order_by(*ordered)
            .limit(size)
            .offset(offset)
        )
        items = [dict(r) for r in conn.execute(query).mappings()]
    return Found(items, int(total), max(1, -(-int(total) // size)))


def places(conn: Connection) -> dict[str, list[str]]:
    """The provinces and communes the catalogue's producers are in, for the filters."""
    rows = conn.execute(
        select(PRODUCER.c.current_province, PRODUCER.c.current_commune)
        .where(PRODUCER.c.id.in_(select(PRODUCT.c.producer_id)))
        .distinct()
    ).all()
    return {
        "provinces": sorted({r[0] for r in rows if r[0]}),
        "communes": sorted({r[1] for r in rows if r[1]}),
    }
