"""How far an XLSX may inflate: its zip members' sizes and compression ratios, checked from the central directory
before any member is decompressed, so a decompression bomb is refused (413) without being parsed."""

from __future__ import annotations

import zipfile

from matcher.errors import PayloadTooLarge

# The cells of a sheet are the text a CSV would hold, wrapped in XML tags (<c r="B7" t="s"><v>12</v></c>) that
# take a few times the cell's own bytes; four times the import limit leaves room for that and no more.
INFLATION_FACTOR = 4
# Spreadsheets compress about 5-25:1 (a sheet of one value repeated stays under 30:1); a zip bomb is 1000:1.
MAX_RATIO = 100
# Small members (styles, themes, relations) compress far beyond any ratio without costing anything to read.
RATIO_FLOOR = 1 << 20


def inflated_limit(max_import_bytes: int) -> int:
    """The most bytes an XLSX within the import limit may inflate to."""
    return max_import_bytes * INFLATION_FACTOR


def check_inflation(archive: zipfile.ZipFile, max_import_bytes: int) -> None:
    """Raise PayloadTooLarge when the members would inflate past the limit, or one is compressed like a bomb.

    The declared sizes can be trusted as bounds: zipfile never reads a member past its declared size (extra
    bytes fail the member's CRC check instead)."""
    limit = inflated_limit(max_import_bytes)
    total = 0
    for member in archive.infolist():
        total += member.file_size
        if total > limit:
            raise PayloadTooLarge(
                f"the workbook inflates to more than {limit:,} bytes ({INFLATION_FACTOR} times "
                "MATCHER_MAX_IMPORT_BYTES); split it or send CSV"
            )
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > RATIO_FLOOR and ratio > MAX_RATIO:
            raise PayloadTooLarge(
                f"the workbook member {member.filename[:80]!r} is compressed {ratio:,.0f}:1 (more than "
                f"{MAX_RATIO}:1): not a spreadsheet's data"
            )
