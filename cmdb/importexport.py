"""Bulk import and export of CIs and relationships, as CSV or JSON (docs/import-format.md).

An import is all or nothing, in two phases. Validation parses the whole file, reads what it
needs from the database in batches, and collects every problem with its row, column and reason;
any problem refuses the file before a single write. Only a clean file reaches the write phase:
one transaction, raw `executemany` inserts in chunks, the new ids learnt with one read, one
history row per record, and one graph-log "rebuild" entry so every process's graph cache
reloads once instead of replaying 100,000s of log entries.

The rules are the ones `CMDBService.create_ci` and `create_relationship` apply one record at a
time. They are restated here for whole batches because calling those methods per row would take
a transaction and several queries for each of 400,000 records; a change to those rules must be
made in both places (tests/integration/test_import.py checks each kind of refusal).

The per-row code favours plain tuples, ints and local lookups over small objects: it runs
400,000 times for a full-size file, and the import has a 20-second budget on SQLite.
"""

from __future__ import annotations

import asyncio
import csv
import heapq
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from cmdb import repository as repo
from cmdb.attributes import validate_attributes
from cmdb.db import atomic
from cmdb.errors import Conflict, FieldProblem, InvalidInput, NotFound
from cmdb.graphcache import record_graph_changes
from cmdb.models import CI, Actor, CIClass, CIStatus, Criticality, Customer, RelationshipType, Scope
from cmdb.services import CI_WRITERS, Clock, CMDBService, require

MAX_PROBLEMS = 1000
FORMATS = ("csv", "json")
MAX_NAME = 200
# Ids are 32-bit on PostgreSQL (SERIAL); a larger number names nothing and must not reach a
# driver, which would fail on it instead of answering "no such CI".
MAX_ID = 2**31 - 1
# Beyond this many distinct customer references, read every visible customer once rather than
# one query per reference (a file may be made of nothing but bad keys).
_CUSTOMER_QUERIES = 50

CI_FIELDS = ("name", "customer", "class", "status", "criticality", "description")
RELATIONSHIP_FIELDS = ("source", "target", "type", "note", "customer")
ATTR_PREFIX = "attr."
# Export column order: the kind, the CI columns, the relationship columns, then attributes
# (their number varies with the classes exported, so they go last).
CSV_COLUMNS = (
    "record",
    "customer",
    "name",
    "class",
    "status",
    "criticality",
    "description",
    "source",
    "target",
    "type",
    "note",
)
# Spreadsheets run a cell starting with one of these as a formula (CSV injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_TRIGGER_CHARS = frozenset(FORMULA_TRIGGERS)

_CLASSES = frozenset(CIClass.values())
_STATUSES = frozenset(CIStatus.values())
_CRITICALITIES = frozenset(Criticality.values())
_TYPES = frozenset(RelationshipType.values())

# Where a record sits: a CSV data row (section 0, counted from 1) or an index in JSON's "cis"
# (section 1) or "relationships" (section 2) list. Problems are reported in this order.
CSV_ROWS, JSON_CIS, JSON_RELATIONSHIPS = 0, 1, 2

# A resolved relationship end is an int key: -(i + 1) for the i-th CI this file creates, the
# id for a CI already in the database. A pending end waits for the database lookups:
# ("id", ci_id) or ("name", tenant_id, name).
_Pending: TypeAlias = tuple[Any, ...]


@dataclass(frozen=True)
class ImportReport:
    cis_created: int
    relationships_created: int


# --- problems ------------------------------------------------------------------------------


def _field(section: int, row: int, name: str) -> str:
    """A field's name in problems: the CSV column, or the JSON path (`cis[3].name`)."""
    if section == JSON_CIS:
        return f"cis[{row}].{name}"
    if section == JSON_RELATIONSHIPS:
        return f"relationships[{row}].{name}"
    return name


def _attribute_prefix(section: int, row: int) -> str:
    return f"cis[{row}].attributes" if section == JSON_CIS else "attr"


class _Problems:
    """Every problem is counted; the report keeps the first MAX_PROBLEMS in file order (a
    bounded heap, so a file that is wrong on each of 400,000 rows costs no more memory)."""

    def __init__(self, cap: int = MAX_PROBLEMS) -> None:
        self.cap = cap
        self.total = 0
        self._heap: list[tuple[int, int, int, FieldProblem]] = []

    def header(self, field_name: str, reason: str) -> None:
        """A problem of the file as a whole (its header, its encoding): no row."""
        self._keep(-1, 0, FieldProblem(field_name, reason))

    def add(self, section: int, row: int, field_name: str, reason: str, *, named: bool = False) -> None:
        """A problem of one record. `named`: the field name already carries the JSON path."""
        name = field_name if named else _field(section, row, field_name)
        self._keep(section, row, FieldProblem(name, reason, row))

    def _keep(self, section: int, row: int, problem: FieldProblem) -> None:
        self.total += 1
        # Negated positions make heapq's min-heap a max-heap: the latest problem is dropped first.
        item = (-section, -row, -self.total, problem)
        if len(self._heap) < self.cap:
            heapq.heappush(self._heap, item)
        elif item > self._heap[0]:
            heapq.heapreplace(self._heap, item)

    def __bool__(self) -> bool:
        return self.total > 0

    def error(self) -> InvalidInput:
        problems = [item[3] for item in sorted(self._heap, reverse=True)]
        listed = f"the first {len(problems)} are listed" if self.total > len(problems) else "all are listed"
        shown = "; ".join(problem.sentence() for problem in problems[:5])
        more = " ..." if self.total > 5 else ""
        plural = "s" if self.total != 1 else ""
        detail = f"Nothing was imported: the file has {self.total} problem{plural} ({listed}). {shown}{more}"
        return InvalidInput(problems, detail=detail)


# --- parsed records ------------------------------------------------------------------------


@dataclass(slots=True)
class _RawCI:
    section: int
    row: int
    name: Any
    customer: Any
    ci_class: Any
    status: Any
    criticality: Any
    description: Any
    attributes: Mapping[str, Any]


@dataclass(slots=True)
class _RawRelationship:
    section: int
    row: int
    source: Any
    target: Any
    type: Any
    note: Any
    customer: Any


@dataclass(slots=True)
class _NewCI:
    section: int
    row: int
    tenant_id: int
    name: str
    ci_class: str
    status: str
    criticality: str
    description: str
    attributes: dict[str, Any]


# (source key, target key, type, note): keys as described at _Pending.
_NewRelationship: TypeAlias = tuple[int, int, str, str]


# --- reading the file ----------------------------------------------------------------------


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text_of(content: bytes | str, problems: _Problems) -> str | None:
    if isinstance(content, bytes):
        try:
            # utf-8-sig drops the byte-order mark spreadsheets put in front of UTF-8 CSV.
            return content.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            problems.header("body", f"is not UTF-8 text (byte {error.start})")
            return None
    return content.removeprefix("\ufeff")


def neutralise(cell: str) -> str:
    """Prefix a formula-like cell with `'` so a spreadsheet shows it as text (OWASP CSV injection)."""
    return "'" + cell if cell.startswith(FORMULA_TRIGGERS) else cell


def _unneutralise(cell: str) -> str:
    """Undo `neutralise`, so an export re-imports as it was (a negative number stays a number)."""
    if cell[:1] == "'" and cell[1:2] in _TRIGGER_CHARS:
        return cell[1:]
    return cell


def _csv_header(columns: list[str], problems: _Problems) -> str | None:
    """Which records the rows hold ("ci", "relationship", or "mixed" with a record column), or
    None after recording why the header is unusable."""
    names = set(columns)
    if "record" in names:
        kind, allowed = "mixed", {"record", *CI_FIELDS, *RELATIONSHIP_FIELDS}
    elif {"source", "target", "type"} <= names:
        kind, allowed = "relationship", set(RELATIONSHIP_FIELDS)
    else:
        kind, allowed = "ci", set(CI_FIELDS)
    usable = True
    seen: set[str] = set()
    for column in columns:
        if not column:
            continue  # spreadsheets leave unnamed trailing columns; their cells are ignored
        if column in seen:
            problems.header(column, "appears twice in the header")
            usable = False
        seen.add(column)
        if kind != "relationship" and column.startswith(ATTR_PREFIX) and len(column) > len(ATTR_PREFIX):
            continue
        if column not in allowed:
            if kind == "ci" and column in RELATIONSHIP_FIELDS:
                hint = "a relationship file needs the columns source, target and type, or add a record column"
            else:
                hint = "known: " + ", ".join(sorted(allowed)) + (", attr.<name>" if kind != "relationship" else "")
            problems.header(column, f"is not a known column ({hint})")
            usable = False
    if kind == "ci":
        for required in ("name", "class"):
            if required not in names:
                problems.header(required, "column is missing from the header")
                usable = False
    return kind if usable else None


def _parse(content: bytes | str, fmt: str, problems: _Problems) -> tuple[list[_RawCI], list[_RawRelationship]]:
    text = _text_of(content, problems)
    if text is None:
        return [], []
    return _parse_csv(text, problems) if fmt == "csv" else _parse_json(text, problems)


def _parse_csv(text: str, problems: _Problems) -> tuple[list[_RawCI], list[_RawRelationship]]:
    cis: list[_RawCI] = []
    relationships: list[_RawRelationship] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    row = 0
    try:
        header = next(reader, None)
        if header is None or not "".join(header).strip():
            problems.header("body", "is empty: the first line must name the columns")
            return cis, relationships
        columns = [cell.strip().lower() for cell in header]
        kind = _csv_header(columns, problems)
        if kind is None:
            return cis, relationships
        index = {column: position for position, column in enumerate(columns) if column}
        attr_columns = [(c[len(ATTR_PREFIX) :], p) for c, p in index.items() if c.startswith(ATTR_PREFIX)]
        width = len(columns)
        # Columns the header lacks read an always-empty cell, one past the last column.
        i_record, i_name, i_customer, i_class, i_status, i_criticality, i_description = (
            index.get(name, width)
            for name in ("record", "name", "customer", "class", "status", "criticality", "description")
        )
        i_source, i_target, i_type, i_note = (index.get(name, width) for name in ("source", "target", "type", "note"))
        un = _unneutralise
        for cells in reader:
            row += 1  # data rows count from 1; a quoted cell may span lines, so lines would mislead
            if not "".join(cells).strip():
                continue
            if len(cells) > width:
                if "".join(cells[width:]).strip():
                    problems.add(CSV_ROWS, row, "row", f"has {len(cells)} cells but the header names {width} columns")
                    continue
            else:
                cells.extend([""] * (width + 1 - len(cells)))
            row_kind = kind
            if kind == "mixed":
                row_kind = cells[i_record].strip().lower()
                if row_kind not in ("ci", "relationship"):
                    problems.add(CSV_ROWS, row, "record", "must be ci or relationship")
                    continue
            if row_kind == "ci":
                cis.append(
                    _RawCI(
                        CSV_ROWS,
                        row,
                        un(cells[i_name]),
                        un(cells[i_customer]),
                        cells[i_class],
                        cells[i_status],
                        cells[i_criticality],
                        un(cells[i_description]),
                        # An empty cell means "not set": a file mixing classes leaves most
                        # attribute columns empty on every row.
                        {name: un(cells[p]) for name, p in attr_columns if cells[p] and cells[p].strip()},
                    )
                )
            else:
                relationships.append(
                    _RawRelationship(
                        CSV_ROWS,
                        row,
                        un(cells[i_source]),
                        un(cells[i_target]),
                        cells[i_type],
                        un(cells[i_note]),
                        un(cells[i_customer]),
                    )
                )
    except csv.Error as error:
        problems.add(CSV_ROWS, row + 1, "row", f"is not valid CSV: {error}")
    return cis, relationships


def _parse_json(text: str, problems: _Problems) -> tuple[list[_RawCI], list[_RawRelationship]]:
    cis: list[_RawCI] = []
    relationships: list[_RawRelationship] = []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        problems.header("body", f"is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})")
        return cis, relationships
    raw_cis: Any
    raw_relationships: Any
    if isinstance(data, list):
        raw_cis, raw_relationships = data, []
    elif isinstance(data, dict):
        for key in data:
            if key not in ("cis", "relationships"):
                problems.header(str(key), "is not a section of an import (known: cis, relationships)")
        raw_cis, raw_relationships = data.get("cis") or [], data.get("relationships") or []
    else:
        problems.header("body", 'must be {"cis": [...], "relationships": [...]} or a list of CIs')
        return cis, relationships
    for section_name, items in (("cis", raw_cis), ("relationships", raw_relationships)):
        if not isinstance(items, list):
            problems.header(section_name, "must be a list")
    if not isinstance(raw_cis, list) or not isinstance(raw_relationships, list):
        return cis, relationships

    ci_keys = {*CI_FIELDS, "attributes"}
    for position, item in enumerate(raw_cis):
        if not isinstance(item, dict):
            problems.add(JSON_CIS, position, f"cis[{position}]", "must be an object", named=True)
            continue
        for key in item:
            if key not in ci_keys:
                reason = f"is not a field of a CI (known: {', '.join(sorted(ci_keys))})"
                problems.add(JSON_CIS, position, str(key), reason)
        attributes = item.get("attributes")
        if attributes is None:
            attributes = {}
        elif not isinstance(attributes, dict):
            problems.add(JSON_CIS, position, "attributes", "must be an object")
            attributes = {}
        cis.append(
            _RawCI(
                JSON_CIS,
                position,
                item.get("name"),
                item.get("customer"),
                item.get("class"),
                item.get("status"),
                item.get("criticality"),
                item.get("description"),
                attributes,
            )
        )
    relationship_keys = set(RELATIONSHIP_FIELDS)
    for position, item in enumerate(raw_relationships):
        if not isinstance(item, dict):
            problems.add(JSON_RELATIONSHIPS, position, f"relationships[{position}]", "must be an object", named=True)
            continue
        for key in item:
            if key not in relationship_keys:
                reason = f"is not a field of a relationship (known: {', '.join(sorted(relationship_keys))})"
                problems.add(JSON_RELATIONSHIPS, position, str(key), reason)
        relationships.append(
            _RawRelationship(
                JSON_RELATIONSHIPS,
                position,
                item.get("source"),
                item.get("target"),
                item.get("type"),
                item.get("note"),
                item.get("customer"),
            )
        )
    return cis, relationships


# --- small checks --------------------------------------------------------------------------


def _customer_ref(value: Any) -> int | str | None:
    """A customer reference: an id for an integer or digits, else a key; None when absent or
    of a type no reference has."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip():
        value = value.strip()
        return int(value) if value.isdigit() else value
    return None


def _choice(
    value: Any, known: frozenset[str], default: str | None, section: int, row: int, field_name: str, problems: _Problems
) -> str | None:
    """The chosen value, the default when blank, or None after recording a problem."""
    if type(value) is str and value in known:
        return value  # the usual case, first: it runs for several fields of every row
    if _blank(value):
        if default is None:
            problems.add(section, row, field_name, "is required")
        return default
    if isinstance(value, str) and value.strip() in known:
        return value.strip()
    problems.add(section, row, field_name, f"unknown {field_name} {value!r}; known: {', '.join(sorted(known))}")
    return None


def _optional_text(value: Any, section: int, row: int, field_name: str, problems: _Problems) -> str | None:
    """The text of an optional field ('' when absent), or None after recording a problem."""
    if value is None:
        return ""
    if not isinstance(value, str):
        problems.add(section, row, field_name, f"must be text, got {type(value).__name__}")
        return None
    if "\x00" in value:
        # PostgreSQL text cannot hold NUL: refuse it here rather than fail in the driver.
        problems.add(section, row, field_name, "must not contain NUL characters")
        return None
    return value


def _attribute_value_problem(value: Any) -> str | None:
    """What validate_attributes lets through but the database cannot store faithfully."""
    if isinstance(value, float) and not math.isfinite(value):
        # NaN and infinity are not JSON: PostgreSQL's JSONB refuses them.
        return "must be a finite number"
    if isinstance(value, str) and "\x00" in value:
        return "must not contain NUL characters"
    if isinstance(value, list) and any("\x00" in item for item in value):
        return "must not contain NUL characters"
    return None


def _dumps(value: Any) -> str:
    # The spelling CMDBService stores attributes with, so imported rows read back alike.
    return json.dumps(value, default=str, sort_keys=True)


# --- validation ----------------------------------------------------------------------------


class _Batch:
    """One import being validated: the parsed rows, what the database said about them, and
    the problems found. Database lookups are made in batches, never per row."""

    def __init__(self, scope: Scope, provider: Customer, default: Customer | None, problems: _Problems) -> None:
        self.scope = scope
        self.provider = provider
        self.default = default
        self.problems = problems
        self.customers: dict[int | str, Customer | None] = {}
        self.new_cis: list[_NewCI] = []
        self.new_relationships: list[_NewRelationship] = []
        # tenant -> name -> index into new_cis. Rows with problems in other fields are kept so
        # references to them do not each add a second, misleading "no such CI".
        self.file_names: dict[int, dict[str, int]] = {}
        # Existing CIs the relationships name: id -> (tenant, name).
        self.existing: dict[int, tuple[int, str]] = {}
        self._tenants: dict[Any, tuple[Customer | None, str | None]] = {}
        self._keys: dict[int, str] | None = None

    async def load_customers(self, cis: Sequence[_RawCI], relationships: Sequence[_RawRelationship]) -> None:
        values = {raw.customer for raw in cis if not isinstance(raw.customer, list | dict)}
        values |= {raw.customer for raw in relationships if not isinstance(raw.customer, list | dict)}
        for raw in relationships:
            for end in (raw.source, raw.target):
                if isinstance(end, str) and ":" in end:
                    values.add(end.partition(":")[0])
        refs = {ref for ref in map(_customer_ref, values) if ref is not None}
        if len(refs) <= _CUSTOMER_QUERIES:
            for ref in refs:
                known = isinstance(ref, str) or 0 < ref <= MAX_ID
                self.customers[ref] = await repo.get_customer(self.scope, ref) if known else None
            return
        visible: dict[int | str, Customer] = {}
        offset = 0
        while True:
            page, total = await repo.list_customers(self.scope, 500, offset)
            for customer in page:
                visible[customer.id] = visible[customer.key] = customer
            offset += len(page)
            if not page or offset >= total:
                break
        for ref in refs:
            self.customers[ref] = visible.get(ref)

    def key_of(self, tenant_id: int) -> str:
        if self._keys is None:
            known = [*self.customers.values(), self.default, self.provider]
            self._keys = {customer.id: customer.key for customer in known if customer is not None}
        return self._keys.get(tenant_id, str(tenant_id))

    def tenant_for(self, value: Any, section: int, row: int) -> Customer | None:
        """The row's customer (the default when blank), or None after recording a problem."""
        # Files repeat a handful of customer values on every row: decide each value once.
        # The type is part of the key so that True never passes for the id 1.
        key = (type(value), value) if isinstance(value, str | int | None) else None
        decided = self._tenants.get(key) if key is not None else None
        if decided is None:
            decided = self._decide_tenant(value)
            if key is not None:
                self._tenants[key] = decided
        customer, reason = decided
        if reason is not None:
            self.problems.add(section, row, "customer", reason)
        return customer

    def _decide_tenant(self, value: Any) -> tuple[Customer | None, str | None]:
        if _blank(value):
            if self.default is None:
                return None, "is required (fill the customer column or pass customer)"
            return self.default, None
        ref = _customer_ref(value)
        if ref is None:
            return None, "must be a customer key or id"
        customer = self.customers.get(ref)
        if customer is None:
            return None, f"no customer {ref} exists, or you may not see it"
        return customer, None

    # --- CIs ---------------------------------------------------------------------------

    def check_ci(self, raw: _RawCI) -> None:
        problems, section, row = self.problems, raw.section, raw.row
        name: str | None = None
        if _blank(raw.name):
            problems.add(section, row, "name", "is required")
        elif not isinstance(raw.name, str):
            problems.add(section, row, "name", f"must be text, got {type(raw.name).__name__}")
        elif len(raw.name.strip()) > MAX_NAME:
            problems.add(section, row, "name", f"must be at most {MAX_NAME} characters")
        elif ":" in raw.name:
            problems.add(section, row, "name", "must not contain ':' (it separates customer and name in references)")
        elif "\x00" in raw.name:
            problems.add(section, row, "name", "must not contain NUL characters")
        else:
            name = raw.name.strip()
        tenant = self.tenant_for(raw.customer, section, row)
        ci_class = _choice(raw.ci_class, _CLASSES, None, section, row, "class", problems)
        status = _choice(raw.status, _STATUSES, CIStatus.LIVE.value, section, row, "status", problems)
        criticality = _choice(
            raw.criticality, _CRITICALITIES, Criticality.MEDIUM.value, section, row, "criticality", problems
        )
        description = _optional_text(raw.description, section, row, "description", problems)
        attributes: dict[str, Any] = {}
        if ci_class is not None:
            prefix = _attribute_prefix(section, row)
            attributes, attribute_problems = validate_attributes(CIClass(ci_class), raw.attributes, prefix=prefix)
            for problem in attribute_problems:
                problems.add(section, row, problem.field, problem.reason, named=True)
            for attr_name, value in attributes.items():
                reason = _attribute_value_problem(value)
                if reason is not None:
                    problems.add(section, row, f"{prefix}.{attr_name}", reason, named=True)
        if name is None or tenant is None:
            return
        names = self.file_names.setdefault(tenant.id, {})
        first = names.get(name)
        if first is not None:
            first_row = self.new_cis[first].row
            reason = f"{name} appears twice in this file for {tenant.key} (first at row {first_row})"
            problems.add(section, row, "name", reason)
            return
        names[name] = len(self.new_cis)
        self.new_cis.append(
            _NewCI(
                section,
                row,
                tenant.id,
                name,
                ci_class or "",
                status or "",
                criticality or "",
                description or "",
                attributes,
            )
        )

    def check_cis(self, raws: Iterable[_RawCI]) -> None:
        for raw in raws:
            self.check_ci(raw)

    async def check_names_against_database(self) -> None:
        for tenant_id, names in self.file_names.items():
            for name in await repo.ci_ids_by_name(tenant_id, names):
                new = self.new_cis[names[name]]
                reason = f"{self.key_of(tenant_id)} already has a CI named {name}"
                self.problems.add(new.section, new.row, "name", reason)

    # --- relationships -----------------------------------------------------------------

    def tenant_of(self, key: int) -> int:
        return self.new_cis[-key - 1].tenant_id if key < 0 else self.existing[key][0]

    def name_of(self, key: int) -> str:
        return self.new_cis[-key - 1].name if key < 0 else self.existing[key][1]

    def _end(
        self, value: Any, row_tenant: Customer | None, customer_ok: bool, raw: _RawRelationship, field_name: str
    ) -> int | _Pending | None:
        """A resolved key, a pending lookup, or None after recording a problem. `customer_ok`
        False: the row's customer was refused already, so a plain name that needed it gets no
        second problem."""
        if type(value) is str and row_tenant is not None:
            # The usual case, first: a plain name of a CI in the row's customer.
            name = value.strip()
            if name and ":" not in name and not name.isdigit():
                position = self.file_names.get(row_tenant.id, {}).get(name)
                return -position - 1 if position is not None else ("name", row_tenant.id, name)
        problems, section, row = self.problems, raw.section, raw.row
        if isinstance(value, bool) or _blank(value):
            problems.add(section, row, field_name, "is required")
            return None
        if isinstance(value, int):
            return ("id", value)
        if not isinstance(value, str):
            problems.add(section, row, field_name, "must be a CI id, a name or CUSTOMER:name")
            return None
        value = value.strip()
        if ":" in value:
            key, _, name = value.partition(":")
            customer = self.customers.get(_customer_ref(key) or "")
            if customer is None:
                problems.add(section, row, field_name, f"no customer {key.strip()} exists, or you may not see it")
                return None
            name = name.strip()
            if not name:
                problems.add(section, row, field_name, f"names no CI after '{key}:'")
                return None
            position = self.file_names.get(customer.id, {}).get(name)
            return -position - 1 if position is not None else ("name", customer.id, name)
        if value.isdigit():
            return ("id", int(value))
        if customer_ok:
            reason = f"{value} needs a customer: fill the customer column, pass customer, or write CUSTOMER:{value}"
            problems.add(section, row, field_name, reason)
        return None

    async def check_relationships(self, raws: Sequence[_RawRelationship]) -> None:
        # Ends in this file resolve while parsing; the rest wait for batched database lookups.
        # The two CPU-bound passes run in a worker thread so the event loop keeps serving.
        parsed, wanted_names, wanted_ids = await asyncio.to_thread(self._parse_relationships, raws)
        found_names: dict[tuple[int, str], int] = {}
        for tenant_id, names in wanted_names.items():
            for name, ci_id in (await repo.ci_ids_by_name(tenant_id, names)).items():
                found_names[(tenant_id, name)] = ci_id
                self.existing[ci_id] = (tenant_id, name)
        in_range = {ci_id for ci_id in wanted_ids if 0 < ci_id <= MAX_ID}
        for ci_id, (tenant_id, name) in (await repo.ci_refs_by_ids(in_range)).items():
            if self.scope.can_see(tenant_id):
                self.existing[ci_id] = (tenant_id, name)
        between_existing = await asyncio.to_thread(self._check_edges, parsed, found_names)
        if between_existing:
            existing = await repo.edges_from({source for _, source, _, _ in between_existing})
            for raw, source, target, type_ in between_existing:
                if (source, target, type_) in existing:
                    label = RelationshipType(type_).label
                    reason = f"{self.name_of(source)} already {label} {self.name_of(target)}"
                    self.problems.add(raw.section, raw.row, "target", reason)

    def _parse_relationships(
        self, raws: Sequence[_RawRelationship]
    ) -> tuple[list[tuple[_RawRelationship, Any, Any, str | None, str | None]], dict[int, set[str]], set[int]]:
        """Pass 1: every row's customer, ends, type and note; which names and ids to look up."""
        problems = self.problems
        parsed: list[tuple[_RawRelationship, Any, Any, str | None, str | None]] = []
        wanted_names: dict[int, set[str]] = {}
        wanted_ids: set[int] = set()
        default = self.default
        for raw in raws:
            # The row's customer qualifies its plain names; without one (and no default) a
            # name must be written CUSTOMER:name.
            before = problems.total
            row_tenant = (
                None
                if default is None and _blank(raw.customer)
                else self.tenant_for(raw.customer, raw.section, raw.row)
            )
            customer_ok = problems.total == before
            source = self._end(raw.source, row_tenant, customer_ok, raw, "source")
            target = self._end(raw.target, row_tenant, customer_ok, raw, "target")
            type_ = (
                raw.type
                if raw.type.__class__ is str and raw.type in _TYPES
                else _choice(raw.type, _TYPES, None, raw.section, raw.row, "type", problems)
            )
            note = (
                raw.note
                if raw.note.__class__ is str and "\x00" not in raw.note
                else _optional_text(raw.note, raw.section, raw.row, "note", problems)
            )
            for end in (source, target):
                if end.__class__ is tuple:
                    if end[0] == "id":
                        wanted_ids.add(end[1])
                    else:
                        wanted_names.setdefault(end[1], set()).add(end[2])
            parsed.append((raw, source, target, type_, note))
        return parsed, wanted_names, wanted_ids

    def _check_edges(
        self,
        parsed: Sequence[tuple[_RawRelationship, Any, Any, str | None, str | None]],
        found_names: Mapping[tuple[int, str], int],
    ) -> list[tuple[_RawRelationship, int, int, str]]:
        """Pass 2: the edge rules of CMDBService.create_relationship, in file order. Returns the
        edges between two existing CIs, the only ones the database may already hold."""
        problems = self.problems

        def resolve(end: Any, raw: _RawRelationship, field_name: str) -> int | None:
            if end is None or end.__class__ is int:
                return end  # type: ignore[no-any-return]
            if end[0] == "id":
                if end[1] not in self.existing:
                    problems.add(raw.section, raw.row, field_name, f"no CI {end[1]} exists, or you may not see it")
                    return None
                return int(end[1])
            ci_id = found_names.get((end[1], end[2]))
            if ci_id is None:
                reason = f"no CI named {end[2]} in {self.key_of(end[1])}, neither in this file nor in Keel"
                problems.add(raw.section, raw.row, field_name, reason)
            return ci_id

        provider_id = self.provider.id
        seen: dict[tuple[int, int, str], int] = {}
        between_existing: list[tuple[_RawRelationship, int, int, str]] = []
        for raw, source_end, target_end, type_, note in parsed:
            source = resolve(source_end, raw, "source")
            target = resolve(target_end, raw, "target")
            if source is None or target is None or type_ is None or note is None:
                continue
            if source == target:
                problems.add(raw.section, raw.row, "target", "a CI cannot relate to itself")
                continue
            source_tenant, target_tenant = self.tenant_of(source), self.tenant_of(target)
            if source_tenant != target_tenant and (target_tenant != provider_id or source_tenant == provider_id):
                problems.add(
                    raw.section,
                    raw.row,
                    "target",
                    "CIs of two different customers cannot be related; only a customer's CI may rely on a provider CI",
                )
                continue
            edge = (source, target, type_)
            first = seen.get(edge)
            if first is not None:
                label = RelationshipType(type_).label
                reason = (
                    f"{self.name_of(source)} {label} {self.name_of(target)} appears twice in this file "
                    f"(first at row {first})"
                )
                problems.add(raw.section, raw.row, "target", reason)
                continue
            seen[edge] = raw.row
            if source > 0 and target > 0:
                between_existing.append((raw, source, target, type_))
            self.new_relationships.append((source, target, type_, note))
        return between_existing


class _Rows:
    """The rows a validated batch writes, in the column orders of the repository's bulk
    inserts. Plain tuples and strings: they are made 800,000 times for a full-size file."""

    def __init__(self, batch: _Batch, at: Any, actor: Actor) -> None:
        self.batch = batch
        self.at = at
        self.actor_id = actor.person_id
        self.actor_name = actor.username
        self.attributes_json: list[str] = []
        # (source id, target id, type, note, source key, target key), in insertion order.
        self.edges: list[tuple[int, int, str, str, int, int]] = []

    def cis(self) -> list[tuple[Any, ...]]:
        at = self.at
        self.attributes_json = [_dumps(new.attributes) for new in self.batch.new_cis]
        return [
            (new.tenant_id, new.name, new.ci_class, new.status, new.criticality, new.description, attrs, 1, at, at)
            for new, attrs in zip(self.batch.new_cis, self.attributes_json, strict=True)
        ]

    def relationships(self, ci_ids: Sequence[int]) -> list[tuple[Any, ...]]:
        # Edges go in sorted by (source, target): the source and unique-edge indexes then grow
        # at their ends instead of at random pages (on SQLite, 2-3 times faster). Sorting never
        # reaches the note: validation left no two edges with the same source, target and type.
        self.edges = sorted(
            (
                ci_ids[-source - 1] if source < 0 else source,
                ci_ids[-target - 1] if target < 0 else target,
                type_,
                note,
                source,
                target,
            )
            for source, target, type_, note in self.batch.new_relationships
        )
        tenant_of, at = self.batch.tenant_of, self.at
        return [(tenant_of(key), source, target, type_, note, at) for source, target, type_, note, key, _ in self.edges]

    def history(self, ci_ids: Sequence[int], rel_ids: Sequence[int]) -> list[tuple[Any, ...]]:
        """One "imported" row per CI and relationship. The "after" documents are spelled out
        rather than json.dumps'ed per row, which halves the time at 400,000 rows: names are
        JSON-quoted once each; classes, statuses and types are validated choices with nothing to
        escape; attributes are the JSON the CI row got."""
        batch, at, actor_id, actor_name = self.batch, self.at, self.actor_id, self.actor_name
        quoted: dict[int, str] = {}

        def name_json(key: int) -> str:
            found = quoted.get(key)
            if found is None:
                found = quoted[key] = json.dumps(batch.name_of(key))
            return found

        history: list[tuple[Any, ...]] = [
            (
                new.tenant_id,
                "ci",
                ci_id,
                ci_id,
                None,
                "imported",
                actor_id,
                actor_name,
                at,
                None,
                # What cmdb.services.ci_snapshot records for a new CI.
                f'{{"name": {name_json(-position - 1)}, "class": "{new.ci_class}", '
                f'"status": "{new.status}", "criticality": "{new.criticality}", '
                f'"description": {json.dumps(new.description)}, "owner": null, "support": [], '
                f'"attributes": {attrs}}}',
                None,
                False,
                "[]",
                "",
            )
            for position, (new, ci_id, attrs) in enumerate(
                zip(batch.new_cis, ci_ids, self.attributes_json, strict=True)
            )
        ]
        tenant_of = batch.tenant_of
        history += [
            (
                tenant_of(source_key),
                "relationship",
                rel_id,
                source,
                target,
                "imported",
                actor_id,
                actor_name,
                at,
                None,
                f'{{"source": {name_json(source_key)}, "type": "{type_}", "target": {name_json(target_key)}}}',
                None,
                False,
                "[]",
                note,
            )
            for (source, target, type_, note, source_key, target_key), rel_id in zip(self.edges, rel_ids, strict=True)
        ]
        return history


# --- the service ---------------------------------------------------------------------------


class ImportExportService:
    def __init__(self, clock: Clock, cmdb: CMDBService) -> None:
        self.clock = clock
        self.cmdb = cmdb

    async def import_records(
        self, actor: Actor, content: bytes | str, fmt: str, *, customer: int | str | None = None
    ) -> ImportReport:
        """Creates every CI and relationship of the file, or none: any problem raises
        InvalidInput listing (the first MAX_PROBLEMS of) them with row, field and reason.
        `customer` is the customer of rows that name none."""
        require(actor, *CI_WRITERS)
        if fmt not in FORMATS:
            raise InvalidInput.field("format", "must be csv or json")
        default = None
        if customer is not None:
            known = isinstance(customer, str) or 0 < customer <= MAX_ID
            default = await repo.get_customer(actor.scope, customer) if known else None
            if default is None:
                raise InvalidInput.field("customer", f"no customer {customer} exists, or you may not see it")
        provider = await self.cmdb.provider()
        problems = _Problems()
        # Parsing and the per-row checks are CPU-bound (seconds for a full-size file): they run
        # in a worker thread so the event loop keeps answering other requests meanwhile.
        raw_cis, raw_relationships = await asyncio.to_thread(_parse, content, fmt, problems)
        if not raw_cis and not raw_relationships:
            if not problems:
                problems.header("body", "holds no CIs or relationships")
            raise problems.error()

        batch = _Batch(actor.scope, provider, default, problems)
        await batch.load_customers(raw_cis, raw_relationships)
        await asyncio.to_thread(batch.check_cis, raw_cis)
        await batch.check_names_against_database()
        await batch.check_relationships(raw_relationships)
        if problems:
            raise problems.error()
        return await self._write(actor, batch)

    async def _write(self, actor: Actor, batch: _Batch) -> ImportReport:
        at = repo.bulk_timestamp(self.clock.now())
        rows = _Rows(batch, at, actor)
        # Building rows is CPU-bound too: worker threads again, also inside the transaction.
        ci_rows = await asyncio.to_thread(rows.cis)
        try:
            async with atomic(repo.engine()), repo.bulk_write_cache():
                top_ci = await repo.max_ci_id()
                await repo.bulk_insert_cis(ci_rows)
                ci_ids = await repo.inserted_ids("ci", top_ci, len(ci_rows))
                if ci_ids is None:
                    by_name = {(tenant, name): ci_id for ci_id, tenant, name in await repo.cis_after(top_ci)}
                    ci_ids = [by_name[(new.tenant_id, new.name)] for new in batch.new_cis]
                relationship_rows = await asyncio.to_thread(rows.relationships, ci_ids)
                top_rel = await repo.max_relationship_id()
                await repo.bulk_insert_relationships(relationship_rows)
                rel_ids = await repo.inserted_ids("relationship", top_rel, len(relationship_rows))
                if rel_ids is None:
                    by_edge = {(s, t, k): rel_id for rel_id, s, t, k in await repo.relationships_after(top_rel)}
                    rel_ids = [by_edge[(row[1], row[2], row[3])] for row in relationship_rows]
                await repo.bulk_append_history(await asyncio.to_thread(rows.history, ci_ids, rel_ids))
                # One entry instead of one per record: each process's graph cache rebuilds from the
                # tables when it reads it, which beats replaying 100,000s of log entries.
                await record_graph_changes([{"op": "rebuild"}])
        except Exception as error:
            if repo.is_integrity_error(error):
                # Validation ran before the transaction: a concurrent writer took a name or an
                # edge this file creates in between. The unique indexes caught it; nothing stays.
                raise Conflict(
                    "Another change created a CI or relationship this file also creates while the import ran; "
                    "nothing was imported. Run the import again to see what now clashes."
                ) from error
            raise
        return ImportReport(cis_created=len(batch.new_cis), relationships_created=len(batch.new_relationships))

    # --- export ----------------------------------------------------------------------------

    async def export_records(self, actor: Actor, *, customer: int | str | None, fmt: str) -> str:
        """The actor's CIs (one customer's, or every tenant's for provider staff) and the
        relationships leaving them, in the import format, so an export re-imports into an empty
        customer. A target in another tenant is written CUSTOMER:name; a provider CI that a
        customer contact may not see by name is written as its id, as graph answers redact it."""
        if fmt not in FORMATS:
            raise InvalidInput.field("format", "must be csv or json")
        scope = actor.scope
        if isinstance(customer, int) and not 0 < customer <= MAX_ID:
            raise NotFound("customer", customer)
        tenant_id = (await self.cmdb.get_customer(actor, customer)).id if customer is not None else None
        cis = await repo.export_cis(scope, tenant_id)
        relationships = await repo.export_relationships(scope, tenant_id)
        names = {ci.id: (ci.tenant_id, ci.name) for ci in cis}
        outside = {rel.target_id for rel in relationships} | {rel.source_id for rel in relationships}
        names.update(await repo.ci_refs_by_ids(outside - set(names)))
        keys = await self.cmdb.customer_keys({tenant for tenant, _ in names.values()})

        def ref(ci_id: int, home_tenant: int) -> str | int:
            tenant, name = names[ci_id]
            if not scope.can_see(tenant):
                return ci_id
            if tenant != home_tenant or name.isdigit():
                # Qualified: another tenant, or a name that import would read as an id.
                return f"{keys[tenant]}:{name}"
            return name

        ci_records = [
            {
                "name": ci.name,
                "customer": keys[ci.tenant_id],
                "class": ci.ci_class.value,
                "status": ci.status.value,
                "criticality": ci.criticality.value,
                "description": ci.description,
                "attributes": dict(ci.attributes),
            }
            for ci in cis
        ]
        relationship_records = [
            {
                "source": ref(rel.source_id, rel.tenant_id),
                "target": ref(rel.target_id, rel.tenant_id),
                "type": rel.type.value,
                "note": rel.note,
                "customer": keys[rel.tenant_id],
            }
            for rel in relationships
        ]
        if fmt == "json":
            return json.dumps({"cis": ci_records, "relationships": relationship_records}, ensure_ascii=False, indent=1)
        return _to_csv(cis, ci_records, relationship_records)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "; ".join(str(item) for item in value)
    return str(value)


def _to_csv(
    cis: Iterable[CI], ci_records: Iterable[Mapping[str, Any]], relationship_records: Iterable[Mapping[str, Any]]
) -> str:
    attribute_names = sorted({name for ci in cis for name in ci.attributes})
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow([*CSV_COLUMNS, *(ATTR_PREFIX + name for name in attribute_names)])
    ci_columns = CSV_COLUMNS[1:7]  # customer .. description
    relationship_columns = CSV_COLUMNS[7:]  # source .. note
    for record in ci_records:
        attributes = record["attributes"]
        writer.writerow(
            [
                "ci",
                *(neutralise(_cell(record[column])) for column in ci_columns),
                *([""] * len(relationship_columns)),
                *(neutralise(_cell(attributes.get(name))) for name in attribute_names),
            ]
        )
    for record in relationship_records:
        writer.writerow(
            [
                "relationship",
                neutralise(_cell(record["customer"])),
                *([""] * (len(ci_columns) - 1)),
                *(neutralise(_cell(record[column])) for column in relationship_columns),
                *([""] * len(attribute_names)),
            ]
        )
    return out.getvalue()
