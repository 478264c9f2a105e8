"""The scan page's words in Vietnamese (the default) and English."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

LANGUAGES = ("vi", "en")

TEXT: Mapping[str, Mapping[str, str]] = {
    "vi": {
        "title": "Truy xuất nguồn gốc OCOP",
        "verdict_registered": "Sản phẩm chính hãng, đã đăng ký bởi",
        "verdict_recalled": "LÔ HÀNG ĐÃ BỊ THU HỒI — không sử dụng",
        "verdict_upstream": "Lô này được làm từ một lô đã bị thu hồi",
        "verdict_unknown": "Mã này chưa được đăng ký — có thể là hàng giả",
        "verdict_bad": "Không đọc được mã này",
        "copied": "Cảnh báo: mã này đã được quét {count} lần, từ {networks} mạng khác nhau, "
        "kể từ lần quét đầu tiên ngày {first}. Có thể đây là mã bị sao chép.",
        "reason": "Lý do",
        "producer": "Nhà sản xuất",
        "address": "Địa chỉ",
        "origin": "Nơi sản xuất lô này",
        "rating": "Xếp hạng OCOP",
        "score": "điểm",
        "certificate": "Giấy chứng nhận",
        "issued_by": "Cơ quan công nhận",
        "valid_until": "Hiệu lực đến",
        "no_rating": "Chưa có xếp hạng OCOP",
        "batch": "Lô hàng",
        "lot": "Số lô",
        "produced_on": "Ngày sản xuất",
        "expires_on": "Hạn sử dụng",
        "quantity": "Số lượng",
        "history": "Hành trình của lô",
        "inputs": "Làm từ các lô",
        "how_checked": "Cách kiểm tra",
        "entry": "Bản ghi sổ cái",
        "proof_ok": "bằng chứng Merkle khớp",
        "hashes": "mã băm",
        "proof_against": "Mọi bản ghi dưới đây được đối chiếu với điểm kiểm tra đã ký của sổ cái, "
        "kích thước",
        "proof_pending": "mới hơn điểm kiểm tra gần nhất",
        "demo": "Dữ liệu minh hoạ: số giấy chứng nhận, số lô và ngày tháng là giả định.",
        "language": "English",
        "status_valid": "Còn hiệu lực",
        "status_expiring": "Sắp hết hiệu lực",
        "status_expired": "Hết hiệu lực",
        "status_revoked": "Đã thu hồi",
        "not_found": "Không tìm thấy",
        "signature_valid": "Tem có chữ ký số của nhà sản xuất: hợp lệ.",
        "signature_invalid": "Chữ ký số trên tem KHÔNG hợp lệ: tem có thể bị làm giả.",
        "signature_unreadable": "Không đọc được chữ ký số trên tem.",
        "mismatch": "Thông tin trên trang này không khớp với bản ghi đã ký: "
        "đừng tin vào trang này và báo cho cơ quan quản lý.",
        "part_batch": "Lô hàng",
        "part_product": "Sản phẩm",
        "part_producer": "Chủ thể sản xuất",
        "part_rating": "Xếp hạng OCOP",
        "part_recall": "Thu hồi",
        "part_event": "Sự kiện",
        "report_title": "Báo nghi ngờ hàng giả",
        "report_note": "Bạn thấy điều gì bất thường?",
        "report_where": "Mua ở đâu (cửa hàng, chợ, trang web)?",
        "report_photo": "Ảnh chụp (không bắt buộc, tối đa 2 MB)",
        "report_send": "Gửi báo cáo",
        "thanks": "Cảm ơn bạn. Báo cáo đã được gửi tới cán bộ kiểm tra.",
    },
    "en": {
        "title": "OCOP product trace",
        "verdict_registered": "Genuine product, registered by",
        "verdict_recalled": "THIS BATCH HAS BEEN RECALLED — do not use",
        "verdict_upstream": "This batch was made from a recalled batch",
        "verdict_unknown": "This code is not registered — the product may be counterfeit",
        "verdict_bad": "This code cannot be read",
        "copied": "Warning: this code has been scanned {count} times, from {networks} "
        "networks, since its first scan on {first}. It may be a copy.",
        "reason": "Reason",
        "producer": "Producer",
        "address": "Address",
        "origin": "Where this batch comes from",
        "rating": "OCOP rating",
        "score": "points",
        "certificate": "Certificate",
        "issued_by": "Rated by",
        "valid_until": "Valid until",
        "no_rating": "No OCOP rating yet",
        "batch": "Batch",
        "lot": "Lot",
        "produced_on": "Produced on",
        "expires_on": "Best before",
        "quantity": "Quantity",
        "history": "The batch's journey",
        "inputs": "Made from",
        "how_checked": "How this was checked",
        "entry": "Ledger entry",
        "proof_ok": "Merkle proof matches",
        "hashes": "hashes",
        "proof_against": "Each entry below was checked against the ledger's signed checkpoint "
        "of size",
        "proof_pending": "newer than the latest checkpoint",
        "demo": "Demo data: certificate numbers, lots and dates are invented.",
        "language": "Tiếng Việt",
        "status_valid": "Valid",
        "status_expiring": "Expiring soon",
        "status_expired": "Expired",
        "status_revoked": "Revoked",
        "not_found": "Not found",
        "signature_valid": "The label carries the producer's digital signature: valid.",
        "signature_invalid": "The label's digital signature is NOT valid: it may be forged.",
        "signature_unreadable": "The label's digital signature cannot be read.",
        "mismatch": "The details on this page do not match the signed record: do not "
        "trust this page, and tell the authorities.",
        "part_batch": "Batch",
        "part_product": "Product",
        "part_producer": "Producer",
        "part_rating": "OCOP rating",
        "part_recall": "Recall",
        "part_event": "Event",
        "report_title": "Report a suspected fake",
        "report_note": "What looks wrong?",
        "report_where": "Where did you buy it (shop, market, website)?",
        "report_photo": "Photo (optional, at most 2 MB)",
        "report_send": "Send report",
        "thanks": "Thank you. Your report has been sent to the inspectors.",
    },
}


@lru_cache(maxsize=1024)
def pick_language(query: str | None, accept_language: str | None) -> str:
    """`?lang=` wins, then the first supported language in Accept-Language, then Vietnamese."""
    if query in LANGUAGES:
        return query
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "vi"
