"""The spreadsheet import's messages, Vietnamese first with an English twin (key -> (vi, en)).

One small catalogue for now; the service's gettext catalogue will take these over.
"""

from __future__ import annotations

from types import MappingProxyType

MESSAGES = MappingProxyType(
    {
        "required": ("Ô này không được để trống.", "This cell must not be empty."),
        "invalid": ("Giá trị không hợp lệ: {detail}", "Invalid value: {detail}"),
        "too_long": ("Quá dài: tối đa {limit} ký tự.", "Too long: at most {limit} characters."),
        "bad_number": ("Phải là một số.", "Must be a number."),
        "bad_date": ("Phải là ngày dạng NNNN-TT-NN.", "Must be a date written YYYY-MM-DD."),
        "duplicate": (
            "Mã {id} xuất hiện hai lần trong tệp.",
            "Id {id} appears twice in the file.",
        ),
        "unknown_producer": (
            "Chưa có chủ thể sản xuất {id} (trong hệ thống hoặc trong tệp).",
            "No producer {id} (in the service or in the file).",
        ),
        "unknown_product": (
            "Chưa có sản phẩm {id} (trong hệ thống hoặc trong tệp).",
            "No product {id} (in the service or in the file).",
        ),
        "fixed": (
            "Không thể đổi {column} của bản ghi đã có (đang là {held}).",
            "{column} of an existing record cannot change (it is {held}).",
        ),
        "rating_changed": (
            "Quyết định {id} đã được ghi với nội dung khác: hãy thu hồi và ghi lại.",
            "Decision {id} is recorded with other values: revoke it and record it again.",
        ),
        "gtin_labelled": (
            "Không thể đổi GTIN: đã in tem mang GTIN cũ.",
            "The GTIN cannot change: labels carrying the old one exist.",
        ),
        "bad_header": (
            "Thiếu cột {columns}; hãy dùng tệp mẫu.",
            "Columns {columns} are missing; use the template.",
        ),
        "unknown_sheet": (
            "Không nhận ra trang tính này (cần producers, products hoặc ratings).",
            "This sheet is not one we read (producers, products or ratings).",
        ),
        "too_many_rows": (
            "Quá nhiều dòng: tối đa {limit} dòng mỗi trang.",
            "Too many rows: at most {limit} a sheet.",
        ),
        "not_a_sheet": (
            "Không đọc được tệp: cần .xlsx hoặc .csv (UTF-8).",
            "The file cannot be read: send .xlsx or .csv (UTF-8).",
        ),
        "too_large": (
            "Tệp quá lớn: tối đa {limit} byte.",
            "The file is too large: at most {limit} bytes.",
        ),
        "refused": ("Sổ cái từ chối: {detail}", "The ledger refused it: {detail}"),
    }
)


def message(key: str, **values: object) -> dict[str, str]:
    """A message in both languages, its placeholders filled in."""
    vi, en = MESSAGES[key]
    return {"vi": vi.format(**values), "en": en.format(**values)}
