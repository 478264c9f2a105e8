"""Form input for the staff app: dates and times as people type them, and every refusal as a
message in the user's language, beside the field it is about.

The rules themselves stay with the models (models.py) and the use cases (service.py); this
module only reads what a browser sends and says in words what the rules refused.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from ocop_trace import i18n, ocop, photos
from ocop_trace.errors import Conflict, Forbidden, NotFound, PayloadTooLarge, ServiceError
from ocop_trace.gs1_lint import AIValueError
from ocop_trace.i18n import N_

FORM = "_form"  # errors about the whole form, shown above it
# Units and steps are codes (ocop.py) whose words the catalogue already has.
UNIT_WORDS = {u: f"unit.{u}" for u in ocop.UNITS}
STEP_WORDS = {s: f"step.{s}" for s in ocop.BIZ_STEPS}
LEVEL_WORDS = {
    "national": N_("app.level.national"),
    "provincial": N_("app.level.provincial"),
    "district": N_("app.level.district"),
}


class FormError(Exception):
    """Input refused before any use case ran: field -> message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


def parse_day(text: str, lang: str, field: str, required: bool = True) -> str | None:
    """dd/mm/yyyy as people write it (or yyyy-mm-dd, as a date picker sends it) -> ISO."""
    text = text.strip()
    if not text:
        if required:
            raise FormError({field: i18n.t(lang, "app.error.required")})
        return None
    for pattern in ("%d/%m/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, pattern).date().isoformat()
        except ValueError:
            continue
    raise FormError({field: i18n.t(lang, "app.error.date")})


def parse_local_time(text: str, lang: str, field: str) -> str:
    """A local time in Vietnam (a datetime-local field) -> the ledger's UTC "…Z" form."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise FormError({field: i18n.t(lang, "app.error.time")}) from None
    if when.tzinfo is not None:
        raise FormError({field: i18n.t(lang, "app.error.time")})
    return when.replace(tzinfo=i18n.ZONE).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_input(value: datetime) -> str:
    """A time as a datetime-local field shows it, in Vietnam's zone."""
    return i18n.local(value).strftime("%Y-%m-%dT%H:%M")


def parse_int(text: str, lang: str, field: str) -> int:
    cleaned = text.strip().replace(".", "").replace(",", "").replace(" ", "")
    if not cleaned.isdigit() or len(cleaned) > 15:
        raise FormError({field: i18n.t(lang, "app.error.number")})
    return int(cleaned)


def parse_points(text: str, lang: str, field: str) -> int:
    """A score in points as typed, "91,14" or "91.14", -> hundredths (9114)."""
    cleaned = text.strip().replace(",", ".")
    whole, _, part = cleaned.partition(".")
    if not whole.isdigit() or len(whole) > 3 or (part and (not part.isdigit() or len(part) > 2)):
        raise FormError({field: i18n.t(lang, "app.error.points")})
    value = int(whole) * 100 + int((part or "0").ljust(2, "0"))
    if value > 10_000:
        raise FormError({field: i18n.t(lang, "app.error.points")})
    return value


_PYDANTIC = {
    "missing": N_("app.error.required"),
    "string_too_short": N_("app.error.too_short"),
    "string_too_long": N_("app.error.too_long"),
    "too_long": N_("app.error.too_many"),
    "string_pattern_mismatch": N_("app.error.pattern"),
    "greater_than_equal": N_("app.error.range"),
    "less_than_equal": N_("app.error.range"),
    "greater_than": N_("app.error.range"),
    "int_parsing": N_("app.error.number"),
    "literal_error": N_("app.error.choice"),
}


def validation_errors(
    lang: str, exc: ValidationError, fields: dict[str, str] | None = None
) -> dict[str, str]:
    """A model's refusals, by form field (`fields` maps a model field to the form's name)."""
    fields = fields or {}
    errors: dict[str, str] = {}
    for problem in exc.errors():
        loc = [str(p) for p in problem["loc"]]
        name = loc[0] if loc else FORM
        ctx: dict[str, Any] = problem.get("ctx") or {}
        cause = ctx.get("error")
        if isinstance(cause, ServiceError) and cause.field:  # a rule naming its field
            name = cause.field
        key = _PYDANTIC.get(problem["type"], N_("app.error.invalid"))
        if isinstance(cause, AIValueError):  # a lot or serial GS1 could not print
            key = N_("app.error.gs1_chars")
        words = i18n.t(
            lang, key, min=ctx.get("min_length", ""), max=ctx.get("max_length", ""), rule=""
        )
        if key == "app.error.invalid" and lang == "en":
            words = f"{words} {problem['msg'].removeprefix('Value error, ')}"
        errors.setdefault(fields.get(name, name), words)
    return errors


def service_errors(lang: str, exc: ServiceError, fields: dict[str, str]) -> dict[str, str]:
    """A use case's refusal, beside the field it names when the form has that field."""
    if isinstance(exc, Conflict):
        key = N_("app.error.conflict")
    elif isinstance(exc, NotFound):
        key = N_("app.error.not_found")
    elif isinstance(exc, Forbidden):
        key = N_("app.error.forbidden")
    else:
        key = N_("app.error.refused")
    words = i18n.t(lang, key)
    if lang == "en":  # the rule's own words exist in English only
        words = f"{words} ({exc.message})"
    return {fields.get(exc.field or "", FORM): words}


async def photo_upload(files: dict[str, Any], name: str = "photo") -> bytes | None:
    """A file field's bytes, None when no file was chosen; read one byte past the photo
    limit at most, so a file over it is known to be without holding all of it."""
    upload = files.get(name)
    if upload is None or not getattr(upload, "filename", None):
        return None
    data: bytes = await upload.read(photos.MAX_BYTES + 1)
    return data


def clean_photo(lang: str, data: bytes | None, field: str = "photo") -> photos.Photo:
    """The uploaded photo as photos.clean keeps it; FormError beside `field` if it is not
    one (not an image, damaged, a decompression bomb, over the size limit)."""
    try:
        return photos.clean(data or b"")
    except photos.PhotoError as exc:
        raise FormError({field: i18n.t(lang, exc.key)}) from None
    except PayloadTooLarge:
        words = i18n.t(lang, "photo.too_large", mb=photos.MAX_BYTES // 2**20)
        raise FormError({field: words}) from None
