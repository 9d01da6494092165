"""Parsing a bulk import (JSON or CSV) into rows, with an error per bad row."""

import csv
import io
import json
from typing import Any

from fastapi import Request
from pydantic import TypeAdapter, ValidationError

from itsm_runtime.errors import Problem

from ..handlers import Imported, RelationshipRowIn, RowError
from .schemas import CiCreate, ImportedRow, ImportResult, RelationshipImport

MAX_ROWS = 50_000
CSV_COLUMNS = ("id", "key", "name", "type", "criticality", "owner", "status", "min_up", "min_up_percent",
               "attributes")

_CI_ROW = TypeAdapter(CiCreate)
_RELATIONSHIP_ROW = TypeAdapter(RelationshipImport)

OPENAPI = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "object", "properties": {
        "cis": {"type": "array", "items": {"$ref": "#/components/schemas/CiCreate"}},
        "relationships": {"type": "array", "items": RelationshipImport.model_json_schema()}}}},
    "text/csv": {"schema": {"type": "string", "description": "A header row, then one CI per row; columns: "
                                                             + ", ".join(CSV_COLUMNS)}},
}}}


def rejected(errors: list[RowError]) -> Problem:
    return Problem(422, f"{len({(e.section, e.row) for e in errors})} row(s) are invalid; nothing was imported",
                   title="Import rejected",
                   errors=[{"section": e.section, "row": e.row, "field": e.field, "message": e.message}
                           for e in errors])


def result(imported: Imported) -> ImportResult:
    return ImportResult(cis=[ImportedRow(row=i, id=ci.id, key=ci.key) for i, ci in enumerate(imported.cis)],
                        relationships=[ImportedRow(row=i, id=r.id) for i, r in enumerate(imported.relationships)])


def _field(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "row"


def _validate(section: str, adapter: TypeAdapter, rows: list[Any], errors: list[RowError]) -> list:
    valid = []
    for row, value in enumerate(rows):
        try:
            valid.append(adapter.validate_python(value))
        except ValidationError as exc:
            errors.extend(RowError(section, row, _field(e["loc"]), e["msg"]) for e in exc.errors())
    return valid


async def parse(request: Request) -> tuple[list[dict[str, Any]], list[RelationshipRowIn]]:
    """CI rows (as CiCreate values) and relationship rows of the request; a 422 listing every bad row."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if content_type == "application/json":
        raw_cis, raw_relationships = _json_rows(body)
    elif content_type in ("text/csv", "application/csv"):
        raw_cis, raw_relationships = _csv_rows(body), []
    else:
        raise Problem(415, "send application/json or text/csv")
    if len(raw_cis) + len(raw_relationships) > MAX_ROWS:
        raise Problem(413, f"an import holds at most {MAX_ROWS} rows; split it")
    errors: list[RowError] = []
    cis = _validate("cis", _CI_ROW, raw_cis, errors)
    relationships = _validate("relationships", _RELATIONSHIP_ROW, raw_relationships, errors)
    if errors:
        raise rejected(errors)
    return ([ci.model_dump() for ci in cis],
            [RelationshipRowIn(**r.model_dump()) for r in relationships])


def _json_rows(body: bytes) -> tuple[list, list]:
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise Problem(422, f"the body is not valid JSON: {exc}") from None
    if not isinstance(document, dict) or set(document) - {"cis", "relationships"}:
        raise Problem(422, 'the body must be an object {"cis": [...], "relationships": [...]}')
    cis, relationships = document.get("cis") or [], document.get("relationships") or []
    if not isinstance(cis, list) or not isinstance(relationships, list):
        raise Problem(422, "cis and relationships must be lists")
    if not cis and not relationships:
        raise Problem(422, "nothing to import: cis and relationships are empty")
    return cis, relationships


def _csv_rows(body: bytes) -> list[dict[str, Any]]:
    """CI rows of a CSV: empty cells are left out, redundancy and attributes are assembled."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Problem(422, "the CSV is not UTF-8") from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise Problem(422, "the CSV has no header row")
    unknown = [c for c in reader.fieldnames if c not in CSV_COLUMNS]
    if unknown:
        raise Problem(422, f"unknown CSV columns: {', '.join(unknown)} (known: {', '.join(CSV_COLUMNS)})",
                      errors=[{"field": c, "message": "unknown column", "type": "value_error"} for c in unknown])
    rows = []
    for record in reader:
        extra_cells = record.pop(None, None)  # more cells than the header has columns
        row: dict[str, Any] = {k: v for k, v in record.items() if isinstance(v, str) and v.strip() != ""}
        if extra_cells:
            row["extra_cells"] = extra_cells  # not a CI field: validation reports it on this row
        redundancy = {k: row.pop(k) for k in ("min_up", "min_up_percent") if k in row}
        if redundancy:
            row["redundancy"] = redundancy
        if "attributes" in row:
            try:
                row["attributes"] = json.loads(row["attributes"])
            except ValueError:
                pass  # left as a string: validation reports it as not an object
        rows.append(row)
    if not rows:
        raise Problem(422, "nothing to import: the CSV has no data rows")
    return rows
