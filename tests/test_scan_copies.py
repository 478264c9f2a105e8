"""Copy detection counts distinct networks per serial: one phone, however it scans, is one."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from pages import HTML, facts, link, scan
from sqlalchemy import insert, text
from support import Api, issue_labels, issued_serials

from ocop_trace import ocop
from ocop_trace.scans import NETWORK, client_hash


def _from(api: Api, host: str, path: str, **headers: str) -> str:
    client = TestClient(api.client.app, client=(host, 40000))
    answer = client.get(path, headers={**HTML, **headers})
    assert answer.status_code == 200
    return answer.text


def _label(api: Api) -> tuple[str, str]:
    issue_labels(api, 1)
    serial = issued_serials(api)[0]
    return serial, link(serial)


def test_one_phone_reloading_and_switching_language_is_one_network(api: Api) -> None:
    _, path = _label(api)
    for n in range(21):
        _from(api, "198.51.100.7", path + ("?lang=en" if n % 2 else ""))
    found = facts(api, path)  # the test client itself is a second network
    assert found["scans"]["networks"] == 2
    assert found["scans"]["count"] == 2  # each network counted once a day
    assert found["verdict"] == "genuine"


def test_one_machine_changing_its_browser_string_is_one_network(api: Api) -> None:
    _, path = _label(api)
    for n in range(6):
        _from(api, "198.51.100.7", path, **{"User-Agent": f"browser/{n}"})
    assert facts(api, path)["scans"]["networks"] == 2
    _, page, _ = scan(api, path)
    assert page.verdict == "genuine"


def test_neighbours_on_one_network_are_one_and_ipv6_is_cut_at_48_bits(api: Api) -> None:
    _, path = _label(api)
    for host in ("198.51.100.7", "198.51.100.200", "2001:db8:1:aa::1", "2001:db8:1:bb::2"):
        _from(api, host, path)
    assert facts(api, path)["scans"]["networks"] == 3  # one /24, one /48, the test client


def test_many_networks_make_a_possible_copy_in_one_box(api: Api) -> None:
    _, path = _label(api)
    wanted = api.settings.copy_networks
    for n in range(wanted - 2):  # with the test client's own, one short of the threshold
        _from(api, f"203.0.{n}.7", path)
    _, page, _ = scan(api, path)
    assert page.verdict == "genuine"
    html = _from(api, "203.0.250.7", path)
    assert 'data-verdict="possible_copy"' in html
    assert html.count('class="verdict') == 1  # one box: not a green one and an orange one
    found = facts(api, path)
    assert found["verdict"] == "possible_copy"
    assert found["scans"]["networks"] == wanted


def test_networks_older_than_the_window_are_not_counted(api: Api) -> None:
    serial, path = _label(api)
    secret = api.settings.secret_key.get_secret_value()
    long_ago = (ocop.today_in_vietnam() - timedelta(days=api.settings.copy_days + 5)).isoformat()
    rows = [
        {
            "serial": serial,
            "client": client_hash(secret, serial, f"192.0.{n}.1"),
            "first_day": long_ago,
            "last_day": long_ago,
            "days": 1,
        }
        for n in range(10)
    ]
    with api.service.engine.begin() as conn:
        conn.execute(insert(NETWORK), rows)
    found = facts(api, path)
    assert found["scans"]["networks"] == 1  # only today's
    assert found["scans"]["count"] == 11  # the network-days stay in the total
    assert found["verdict"] == "genuine"


def test_no_address_is_stored_and_serials_cannot_be_linked(api: Api) -> None:
    issue_labels(api, 2)
    first, second = issued_serials(api)
    for serial in (first, second):
        _from(api, "203.0.113.9", link(serial))
    api.client.app.state.scans.flush()
    with api.service.engine.connect() as conn:
        rows = conn.execute(text("SELECT serial, client FROM scan_network")).all()
    stored = " ".join(str(v) for row in rows for v in row)
    assert "203.0" not in stored
    clients = {serial: {c for s, c in rows if s == serial} for serial in (first, second)}
    assert not clients[first] & clients[second]  # one network, two unlinkable pseudonyms
