"""Reading tables for import: file type detection, text decoding (UTF-8, GBK/GB18030 ...) and rows from
JSON Lines, JSON arrays, CSV/TSV and XLSX, each with its row number as a spreadsheet shows it."""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from embeddings.text import has_cjk
from matcher.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from matcher.ingest import bounded_json
from matcher.ingest.zip_guard import check_inflation

FileFormat = Literal["jsonl", "json", "csv", "xlsx"]


@dataclass
class ParsedFile:
    format: str
    encoding: str | None
    records: list[tuple[int, dict[str, Any] | str]]  # (row number, raw record or an error message)
    columns: list[str] = field(default_factory=list)


_XLSX_TYPES = {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
_CSV_TYPES = {"text/csv", "application/csv", "text/tab-separated-values", "text/x-csv"}
_JSONL_TYPES = {
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/jsonlines",
    "application/json-lines",
    "application/x-jsonl",
}
_VAGUE_TYPES = {
    "",
    "application/octet-stream",
    "text/plain",
    "application/vnd.ms-excel",
    "binary/octet-stream",
}
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
}
SUPPORTED = "CSV (.csv), JSON Lines (.jsonl) or Excel (.xlsx)"
# the encodings an import may be told its text is in (any case), instead of the one detected
ENCODINGS = (
    "utf-8",
    "utf-8-sig",
    "utf-16",
    "utf-16-le",
    "utf-16-be",
    "gb18030",
    "gbk",
    "gb2312",
    "big5",
    "big5hkscs",
    "shift_jis",
    "euc-jp",
    "euc-kr",
    "latin-1",
    "cp1252",
    "ascii",
)


def detect_format(data: bytes, *, filename: str | None = None, content_type: str | None = None) -> FileFormat:
    """The file's format from its content type, its name, then its first bytes; 415 when unsupported."""
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise UnsupportedMediaType(
            f"legacy Excel (.xls) files are not supported: save it as .xlsx or CSV ({SUPPORTED})"
        )
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype in _XLSX_TYPES:
        return "xlsx"
    if ctype in _CSV_TYPES:
        return "csv"
    if ctype in _JSONL_TYPES:
        return "jsonl"
    if ctype == "application/json":
        return "json"
    if ctype not in _VAGUE_TYPES and not ctype.startswith("multipart/"):
        raise UnsupportedMediaType(f"unsupported file type {ctype!r}: send {SUPPORTED}")
    suffix = Path(filename).suffix.lower() if filename else ""
    if suffix == ".xls":
        raise UnsupportedMediaType(
            f"legacy Excel (.xls) files are not supported: save it as .xlsx or CSV ({SUPPORTED})"
        )
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]  # type: ignore[return-value]
    if suffix:
        raise UnsupportedMediaType(f"unsupported file type {suffix!r}: send {SUPPORTED}")
    if data[:4] == b"PK\x03\x04":
        return "xlsx"
    if data[:5] == b"%PDF-" or data[:4] in (b"\x89PNG", b"GIF8") or data[:3] == b"\xff\xd8\xff":
        raise UnsupportedMediaType(f"this is not a table: send {SUPPORTED}")
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head[:1] == b"{":
        return "jsonl"
    if head[:1] == b"[":
        return "json"
    return "csv"


def decode_text(data: bytes) -> tuple[str, str]:
    """(text, encoding): UTF-8 with or without BOM, UTF-16 with BOM, GB18030/GBK, else charset-normalizer's guess.

    Raises ValidationFailed (422) for bytes that are no text in any encoding tried."""
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            raise ValidationFailed(
                _undecodable(f"it starts with a UTF-8 BOM but byte {exc.start} is not UTF-8")
            ) from None
    for bom, enc in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if data.startswith(bom):
            try:
                return data[2:].decode(enc), "utf-16"
            except UnicodeDecodeError:
                raise ValidationFailed(
                    _undecodable("it starts with a UTF-16 BOM but is not UTF-16")
                ) from None
    if b"\x00" in data[:65536]:
        raise ValidationFailed(_undecodable("it holds NUL bytes: a binary file, not text"))
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    # Excel on Chinese Windows saves CSV as GBK; GB18030 is its superset and fails loudly on non-GBK bytes
    try:
        text = data.decode("gb18030")
        if _looks_chinese(text):
            return text, "gb18030"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None or best.encoding is None:
        raise ValidationFailed(_undecodable("it is neither UTF-8 nor GBK/GB18030 and no other encoding fits"))
    enc = best.encoding
    if enc.replace("_", "").lower() in ("gb2312", "gbk", "gb18030", "hz"):
        enc = "gb18030"
    try:
        return data.decode(enc), enc
    except (UnicodeDecodeError, LookupError):
        raise ValidationFailed(_undecodable(f"it is not valid {enc}")) from None


def _undecodable(why: str) -> str:
    return f"cannot decode the file as text: {why}; save it as UTF-8 (or GBK) and try again"


def _looks_chinese(text: str) -> bool:
    sample = text[:20000]
    letters = [c for c in sample if not c.isascii() and not c.isspace()]
    if not letters:
        return True
    cjk = sum(1 for c in letters if has_cjk(c) or unicodedata.category(c).startswith("P"))
    return cjk / len(letters) >= 0.9


def read_table(
    data: bytes, fmt: FileFormat, *, max_rows: int, max_bytes: int, encoding: str | None = None
) -> ParsedFile:
    """Raw records (row number, dict) from a file; rows that cannot be read carry an error message instead.

    `max_bytes` is the import limit, which also bounds how far an XLSX may inflate (see zip_guard)."""
    if fmt == "xlsx":
        return _read_xlsx(data, max_rows, max_bytes)
    if encoding:
        try:
            text, enc = data.decode(encoding).lstrip("\ufeff"), encoding
        except (UnicodeDecodeError, LookupError) as exc:
            raise ValidationFailed(_undecodable(f"{exc}")) from None
    else:
        text, enc = decode_text(data)
    if fmt == "csv":
        return _read_csv(text, enc, max_rows)
    if fmt == "json" or (fmt == "jsonl" and text.lstrip().startswith("[")):
        return _read_json_array(text, enc, max_rows)
    return _read_jsonl(text, enc, max_rows)


def _too_many(max_rows: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the file has more than {max_rows:,} rows (limit MATCHER_MAX_IMPORT_ROWS); split it"
    )


def _read_jsonl(text: str, enc: str, max_rows: int) -> ParsedFile:
    out: list[tuple[int, dict[str, Any] | str]] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if len(out) >= max_rows:
            raise _too_many(max_rows)
        try:
            obj = bounded_json.loads(line)
        except json.JSONDecodeError as exc:
            out.append((n, f"row: malformed JSON ({exc.msg} at column {exc.colno})"))
            continue
        except bounded_json.TooDeep as exc:
            out.append((n, f"row: {exc}"))
            continue
        out.append((n, obj if isinstance(obj, dict) else "row: expected a JSON object on each line"))
    return ParsedFile("jsonl", enc, out)


def _read_json_array(text: str, enc: str, max_rows: int) -> ParsedFile:
    try:
        items = bounded_json.loads_rows(text)
    except bounded_json.TooDeep as exc:
        raise ValidationFailed(
            f"the JSON document is {exc}; send an array of objects or JSON Lines"
        ) from None
    except json.JSONDecodeError as exc:
        raise ValidationFailed(
            f"malformed JSON ({exc.msg} at line {exc.lineno}); send an array or JSON Lines"
        ) from None
    if isinstance(items, dict) and isinstance(items.get("data"), list):
        items = items["data"]
    if not isinstance(items, list):
        raise ValidationFailed("expected a JSON array of objects, or JSON Lines")
    if len(items) > max_rows:
        raise _too_many(max_rows)
    out: list[tuple[int, dict[str, Any] | str]] = [
        (n, _json_row(obj)) for n, obj in enumerate(items, start=1)
    ]
    return ParsedFile("json", enc, out)


def _json_row(obj: object) -> dict[str, Any] | str:
    if isinstance(obj, bounded_json.TooDeep):
        return f"row: {obj}"
    return obj if isinstance(obj, dict) else "row: expected a JSON object"


def _read_csv(text: str, enc: str, max_rows: int) -> ParsedFile:
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    csv.field_size_limit(10_000_000)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    out: list[tuple[int, dict[str, Any] | str]] = []
    try:
        for n, cells in enumerate(reader, start=1):
            if not any(c.strip() for c in cells):
                continue
            if header is None:
                header = [c.strip() for c in cells]
                continue
            if len(out) >= max_rows:
                raise _too_many(max_rows)
            if len(cells) > len(header) and any(c.strip() for c in cells[len(header) :]):
                out.append((n, f"row: {len(cells)} cells but the header has {len(header)} columns"))
                continue
            out.append((n, dict(zip(header, cells, strict=False))))
    except csv.Error as exc:
        raise ValidationFailed(f"malformed CSV near line {reader.line_num}: {exc}") from None
    if header is None:
        raise ValidationFailed("the file is empty: expected a header row and at least one record")
    return ParsedFile("csv", enc, out, header)


def _read_xlsx(data: bytes, max_rows: int, max_bytes: int) -> ParsedFile:
    import zipfile

    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            check_inflation(archive, max_bytes)
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ValidationFailed(
            f"not a readable XLSX workbook ({type(exc).__name__}); save it again as .xlsx"
        ) from None
    try:
        ws = wb.worksheets[0]
        header: list[str] | None = None
        out: list[tuple[int, dict[str, Any] | str]] = []
        for n, values in enumerate(ws.iter_rows(values_only=True), start=1):
            cells = [_cell(v) for v in values]
            if not any(c != "" for c in cells):
                continue
            if header is None:
                header = [str(c).strip() for c in cells]
                continue
            if len(out) >= max_rows:
                raise _too_many(max_rows)
            out.append((n, dict(zip(header, cells, strict=False))))
    finally:
        wb.close()
    if header is None:
        raise ValidationFailed("the first sheet is empty: expected a header row and at least one record")
    return ParsedFile("xlsx", None, out, header)


def _cell(value: Any) -> Any:
    """Spreadsheet cells as CSV would hold them (text), so both formats go through the same conversions."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)
