"""GS1 EPCIS 2.0: events out (JSON-LD, with event hash IDs) and in (capture), from the ledger.

epcis/
├── vocabulary.py   the context, our namespace and URIs, units, time forms
├── event_hash.py   the EPCIS event hash ID (CBV 2.0 algorithm: pre-hash string, ni: URI)
├── export.py       ledger entries as events; documents per batch, product, whole ledger
└── capture.py      an EPCIS document as signed statements under the caller's key
"""
