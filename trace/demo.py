"""Demo data: the Bắc Kạn OCOP products of OCOP.md, seeded through the real use cases.

Every demo fact is a signed ledger statement made by the same code paths as real data.
Certificate numbers, GTINs, lots and dates are invented and say so ("DEMO-" prefixes).
Running it again adds nothing: each item is created only if its id is not there yet.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import Connection, select

from ledger.bundle_export import export_bundle, store_records
from ledger.verifier import Report, verify
from ocop_trace import ocop
from ocop_trace.accounts import USER, Principal
from ocop_trace.errors import Conflict
from ocop_trace.ledger_setup import init_ledger, open_service
from ocop_trace.links import label_url
from ocop_trace.models import (
    BATCH,
    LABEL_SERIAL,
    LABEL_SET,
    PRODUCER,
    PRODUCT,
    RATING,
    AddressBase,
    BatchCreate,
    EventCreate,
    LabelIssue,
    ProducerChanges,
    ProducerCreate,
    ProductChanges,
    ProductCreate,
    RatingCreate,
)
from ocop_trace.rebuild import check_projection
from ocop_trace.service import TraceService
from ocop_trace.settings import Settings
from ocop_trace.text import slug

COUNCIL = Principal(None, "demo", "council")
SCORES = {5: 9114, 4: 7850, 3: 6420}


@dataclass
class DemoResult:
    settings: Settings
    created: int
    bundle: Path
    report: Report
    credentials: Path
    links: dict[str, str] = field(default_factory=dict)  # page state -> scan URL
    witness_policy: Path | None = None
    site: dict[str, str] = field(default_factory=dict)  # the public site's pages to open


def _invented_number(seed: str) -> str:
    return f"DEMO-{int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16):010d}"


def _current(place: ocop.CertifiedAddress) -> AddressBase:
    province = ocop.current_province(place.province) or place.province
    return AddressBase(province=province, commune=place.commune, line=place.line)


def _exists(service: TraceService, table: object, key: object) -> bool:
    with service.engine.connect() as conn:
        return conn.execute(select(table.c.id).where(table.c.id == key)).first() is not None  # type: ignore[attr-defined]


def _producer(service: TraceService, item: ocop.DemoProduct) -> str:
    """Registered as certified (before the reform), then moved by the 2025 address reform:
    a producer.updated statement, as a council records it for each of its producers."""
    producer_id = slug(item.producer)
    place = item.place
    if not _exists(service, PRODUCER, producer_id):
        service.register_producer(
            COUNCIL,
            ProducerCreate(
                id=producer_id,
                name=item.producer,
                type=item.producer_type.value,
                registration_no=_invented_number(producer_id),
                contact="demo@example.invalid",
                address_certified=AddressBase(
                    province=place.province,
                    district=place.district or "",
                    commune=place.commune,
                    line=place.line,
                ),
                address_current=AddressBase(
                    province=place.province, commune=place.commune, line=place.line
                ),
            ),
        )
    reformed = _current(place)
    with service.engine.connect() as conn:
        province = conn.execute(
            select(PRODUCER.c.current_province).where(PRODUCER.c.id == producer_id)
        ).scalar()
    if province != reformed.province:
        service.update_producer(COUNCIL, producer_id, ProducerChanges(address_current=reformed))
    return producer_id


# A GTIN in the restricted-circulation range (200-299): plainly not a real trade item.
DEMO_GTIN = ("tra-hoa-vang", "2000000000015")


def _product_update(service: TraceService) -> None:
    """The council gives one product a GTIN (before any label is printed) and a description."""
    product_id, gtin = DEMO_GTIN
    with service.engine.connect() as conn:
        held = conn.execute(select(PRODUCT.c.gtin).where(PRODUCT.c.id == product_id)).scalar()
    if held is not None and not held:
        service.update_product(
            COUNCIL,
            product_id,
            ProductChanges(gtin=gtin, description="Trà hoa vàng sấy lạnh, hộp 50 g (demo)."),
        )


def _rating(service: TraceService, product_id: str, stars: int, issued: date, number: int) -> int:
    level = "national" if stars == 5 else "provincial"
    body = (
        "Bộ Nông nghiệp và Phát triển nông thôn"
        if issued < ocop.MINISTRY_MERGER and stars == 5
        else "Bộ Nông nghiệp và Môi trường"
        if stars == 5
        else "Hội đồng OCOP tỉnh (demo)"
    )
    return service.record_rating(
        COUNCIL,
        RatingCreate(
            product_id=product_id,
            score_hundredths=SCORES[stars],
            level=level,
            issuing_body=body,
            decision_no=f"DEMO-{number:04d}/QĐ",
            decision_date=issued.isoformat(),
            certificate_no=f"DEMO-{stars}S-{number:04d}",
            issued_on=issued.isoformat(),
            evaluation_year=issued.year,
        ),
    ).index


def _batches(
    service: TraceService,
    producer_id: str,
    product_id: str,
    count: int,
    inputs: list[str] | None = None,
) -> list[str]:
    producer = Principal(None, "demo", "producer", producer_id)
    made = []
    for n in range(1, count + 1):
        batch_id = f"{product_id[:48]}-b{n}"
        made.append(batch_id)
        if _exists(service, BATCH, batch_id):
            continue
        produced = date(2026, 1, 4) + timedelta(days=20 * (n - 1))
        service.register_batch(
            producer,
            BatchCreate(
                id=batch_id,
                product_id=product_id,
                lot=f"DEMO-L{produced:%y%m}{n}",
                produced_on=produced.isoformat(),
                expires_on=(produced + timedelta(days=540)).isoformat(),
                quantity=500 * n,
                unit="pack",
                origin="vùng nguyên liệu của hợp tác xã (demo)",
                inputs=inputs if (inputs and n == 1) else [],
            ),
        )
        for step, hours in (
            ("harvesting", 0),
            ("processing", 30),
            ("packing", 52),
            ("shipping", 75),
        ):
            at = f"{produced + timedelta(hours=hours):%Y-%m-%d}T0{hours % 10}:00:00Z"
            service.add_event(
                producer,
                batch_id,
                EventCreate(biz_step=step, at=at, place="Bắc Kạn (cũ), nay Thái Nguyên"),
            )
    return made


def seed(service: TraceService, today: date) -> dict[str, str]:
    """Create whatever part of the demo is missing; returns a batch id for each page state."""
    states: dict[str, str] = {}
    by_name: dict[str, list[str]] = {}
    numbered = list(enumerate(ocop.DEMO_PRODUCTS, start=1))
    # The rice spirit is made from the sticky rice, so the rice's batches come first.
    numbered.sort(key=lambda pair: pair[1].name.startswith("Rượu"))
    for number, item in numbered:
        producer_id = _producer(service, item)
        product_id = slug(item.name)
        if not _exists(service, PRODUCT, product_id):
            service.register_product(
                COUNCIL,
                ProductCreate(
                    id=product_id,
                    producer_id=producer_id,
                    name_vi=item.name,
                    name_en=item.name_en,
                    product_set=item.product_set,
                    gtin=DEMO_GTINS.get(item.name, ""),
                    description="Dữ liệu minh hoạ (demo data): số liệu là giả định.",
                ),
            )
        if product_id == DEMO_GTIN[0]:
            _product_update(service)  # before its batches: they are named by the GTIN
        with service.engine.connect() as conn:
            rated = conn.execute(
                select(RATING.c.id).where(RATING.c.product_id == product_id)
            ).first()
        if rated is None:
            issued = date(2025, 9, 1)
            if number == 7:  # expired: issued more than 36 months ago
                issued = date(2022, 3, 1)
            elif number == 9:  # expiring within 30 days
                issued = ocop.add_months(today, -36) + timedelta(days=20)
            rating_id = _rating(service, product_id, item.stars, issued, number)
            if number == 3:
                service.revoke_rating(COUNCIL, rating_id, "không tái đánh giá (demo)")
        rice_batches = by_name.get("Gạo nếp Tân Sơn", [])
        inputs = rice_batches[:1] if item.name.startswith("Rượu") else None
        by_name[item.name] = _batches(service, producer_id, product_id, 2 + number % 3, inputs)
    rice = by_name["Gạo nếp Tân Sơn"][0]
    with service.engine.connect() as conn:
        recalled = conn.execute(select(BATCH.c.recalled_index).where(BATCH.c.id == rice)).scalar()
    if recalled is None:
        service.recall(
            Principal(None, "demo", "producer", slug("HTX nông nghiệp sạch Tân Sơn")),
            rice,
            "nấm mốc trong lô (demo)",
        )
    states.update(
        genuine=by_name["Miến dong Tài Hoan"][0],
        rating_revoked=by_name["Trà nụ vối"][0],
        rating_expired=by_name["Trà cà gai leo"][0],
        genuine_rating_expiring=by_name["Trà hoa đu đủ đực"][0],
        recalled=rice,
        recalled_upstream=by_name["Rượu men lá Thanh Tâm"][0],
    )
    return states


def _demo_users(service: TraceService, credentials: Path) -> None:
    with service.engine.connect() as conn:
        if conn.execute(select(USER.c.id).where(USER.c.username == "council-demo")).first():
            return
    lines = []
    for username, role, producer in (
        ("council-demo", "council", ""),
        ("htx-tai-hoan", "producer", "htx-tai-hoan"),
        ("inspector-demo", "inspector", ""),
    ):
        password = secrets.token_urlsafe(12)
        try:
            service.create_user(COUNCIL, username, password, role, producer)
        except Conflict:
            continue
        lines.append(f"{username}\t{role}\t{password}")
    credentials.write_text(
        "username\trole\tpassword (demo only)\n" + "\n".join(lines) + "\n", "utf-8"
    )
    credentials.chmod(0o600)


# GS1 keeps the prefix 952 for demonstrations: no real product carries such a GTIN.
DEMO_GTINS = {"Miến dong Tài Hoan": "9520000000011"}
VOID_REASON = "in nhầm hạn dùng (minh họa)"  # the demo's misprinted label set


def scan_links(service: TraceService, settings: Settings, states: dict[str, str]) -> dict[str, str]:
    """A scan URL for each verdict the page can give: a label for each state's batch (issued
    once), one signed for offline checking and a forgery of it, one scanned like a copy,
    one of a set voided as misprinted, links without a serial, one never issued and one
    unreadable."""
    from ocop_trace.offline import sign_label_url
    from ocop_trace.scans import ScanCounter

    root = settings.public_url.rstrip("/")
    wanted = {
        **states,
        "possible_copy": states["genuine"].replace("-b1", "-b2"),
        "not_registered_voided": states["genuine"],
    }
    links: dict[str, str] = {}
    for state, batch_id in wanted.items():
        with service.engine.connect() as conn:
            batch = conn.execute(select(BATCH).where(BATCH.c.id == batch_id)).one()
            product = conn.execute(select(PRODUCT).where(PRODUCT.c.id == batch.product_id)).one()
            serial = _demo_serial(conn, batch_id, voided=state == "not_registered_voided")
        if serial is None:
            producer = Principal(None, "demo", "producer", batch.producer_id)
            issued = service.issue_labels(
                producer, batch_id, LabelIssue(count=1), settings.public_url
            )
            serial = issued.serials[0].canonical
            if state == "not_registered_voided":  # misprinted: voided by its producer
                service.void_labels(producer, issued.receipt.index, VOID_REASON)
        links[state] = label_url(settings.public_url, product.gtin, batch.lot, serial)
    signed = sign_label_url(links["genuine"], service.producer_key(slug("HTX Tài Hoan")))
    links["genuine_signed_offline"] = signed
    links["bad_signature"] = signed[:-4] + ("AAAA" if not signed.endswith("AAAA") else "BBBB")
    copied = links["possible_copy"].rpartition("/")[2]
    counter = ScanCounter(service.engine, settings.secret_key.get_secret_value())
    for n in range(settings.copy_networks + 1):  # scanned in as many places as a copy is
        counter.record(copied, f"198.51.{n}.20")
    counter.flush()
    gtin = "0" + DEMO_GTINS["Miến dong Tài Hoan"]
    links["product_info"] = f"{root}/01/{gtin}"
    links["product_info_batch"] = f"{root}/b/{states['genuine']}"
    links["not_registered"] = f"{root}/l/0000000000000000"
    links["bad_link"] = f"{root}/01/{gtin[:-1]}{(int(gtin[-1]) + 1) % 10}"
    return links


def _demo_serial(conn: Connection, batch_id: str, voided: bool) -> str | None:
    """The first serial of the batch's voided label sets, or of its valid ones."""
    state = LABEL_SET.c.voided_index.is_not(None) if voided else LABEL_SET.c.voided_index.is_(None)
    found: str | None = conn.execute(
        select(LABEL_SERIAL.c.serial)
        .join(LABEL_SET, LABEL_SET.c.id == LABEL_SERIAL.c.label_set_id)
        .where(LABEL_SERIAL.c.batch_id == batch_id, state)
        .order_by(LABEL_SERIAL.c.serial)
    ).scalar()
    return found


def site_links(root: str, genuine: str) -> dict[str, str]:
    """The public site's pages on the demo: the catalogue, a search without diacritics, the
    code entry with the genuine label's printed code, a product, a producer, the ledger."""
    from urllib.parse import quote

    from ocop_trace.serials import parse_canonical

    printed = parse_canonical(genuine.rpartition("/")[2]).human
    return {
        "the catalogue": f"{root}/",
        "a search without diacritics": f"{root}/?q=mien+dong",
        "every tea (Trà …)": f"{root}/?q=tra",
        "services (homestays)": f"{root}/?sector=tourism",
        "a printed code typed in lower case": f"{root}/code?code={quote(printed.lower())}",
        "a product page": f"{root}/p/mien-dong-tai-hoan",
        "a producer page": f"{root}/producers/htx-tai-hoan",
        "the ledger in the open": f"{root}/ledger",
        "the ledger's bundle": f"{root}/ledger/bundle.jsonl",
        "the sitemap": f"{root}/sitemap.xml",
    }


def run_demo(settings: Settings) -> DemoResult:
    from ocop_trace import demo_witnesses

    started = init_ledger(settings)
    folder = settings.key_dir.parent
    policy = demo_witnesses.setup(folder, started.ledger_vkey)
    settings = settings.model_copy(update={"witness_policy": policy})
    service = open_service(settings)
    before = service.store.size()
    states = seed(service, ocop.today_in_vietnam())
    credentials = settings.key_dir.parent / "credentials.txt"
    _demo_users(service, credentials)
    links = scan_links(service, settings, states)
    service.store.publish_checkpoint()
    demo_witnesses.cosign(folder, policy, service.store)
    bundle = settings.key_dir.parent / "demo-bundle.jsonl"
    export_bundle(service.store, bundle)
    size = service.store.size()
    report = verify(
        store_records(service.store, size),
        service.store.root_key_id,
        workers=1,
        expected_size=size,
        origin=service.store.origin,
        extra_checks=lambda: check_projection(service.store),
    )
    site = site_links(settings.public_url.rstrip("/"), links["genuine"])
    return DemoResult(settings, size - before, bundle, report, credentials, links, policy, site)
