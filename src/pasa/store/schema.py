"""Database schema (SQLAlchemy Core). One schema for SQLite and PostgreSQL.

Core tables rather than ORM classes: the hot paths (HR import, planning, the ledger) are
set-based SQL, and Alembic migrations are generated against this metadata.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

# JSONB on PostgreSQL (indexable, compact), JSON text on SQLite.
Json = sa.JSON().with_variant(JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# --- identity hub -------------------------------------------------------------------------

organisation = sa.Table(
    "organisation",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("ods_code", sa.String(10), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

site = sa.Table(
    "site",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("organisation_id", sa.ForeignKey("organisation.id"), nullable=False),
    sa.Column("code", sa.String(40), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.UniqueConstraint("organisation_id", "code", name="uq_site_org_code"),
)

department = sa.Table(
    "department",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("organisation_id", sa.ForeignKey("organisation.id"), nullable=False),
    sa.Column("code", sa.String(40), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("cost_centre", sa.String(40), nullable=False),
    sa.UniqueConstraint("organisation_id", "code", name="uq_department_org_code"),
)

position = sa.Table(
    "position",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("organisation_id", sa.ForeignKey("organisation.id"), nullable=False),
    sa.Column("position_number", sa.String(40), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("staff_group", sa.String(2), nullable=False),
    sa.Column("job_role_code", sa.String(5), nullable=False),
    sa.Column("area_of_work", sa.String(100), nullable=False),
    sa.Column("occupation_code", sa.String(3), nullable=False),
    sa.Column("grade_code", sa.String(40), nullable=False),
    sa.Column("department_id", sa.ForeignKey("department.id"), nullable=False),
    sa.Column("site_id", sa.ForeignKey("site.id"), nullable=False),
    sa.UniqueConstraint("organisation_id", "position_number", name="uq_position_org_number"),
)

person = sa.Table(
    "person",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uid", sa.String(36), nullable=False, unique=True),
    sa.Column("title", sa.String(20), nullable=True),
    sa.Column("first_name", sa.String(100), nullable=False),
    sa.Column("middle_names", sa.String(100), nullable=True),
    sa.Column("last_name", sa.String(100), nullable=False),
    sa.Column("known_as", sa.String(100), nullable=True),
    sa.Column("date_of_birth", sa.Date, nullable=True),
    sa.Column("ni_number", sa.String(9), nullable=True, index=True),
    sa.Column("email", sa.String(254), nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

# SCIM filters (pasa.service.scim): an HR user's userName is lower(coalesce(email, uid)), and
# ``userName eq`` / ``emails eq`` look people up by that expression.
sa.Index("ix_person_scim_user_name", sa.func.lower(sa.func.coalesce(person.c.email, person.c.uid)))

# Cross-reference of identifiers: there is no national employee number, so every system's
# identifier for a person lives here (ESR employee number per organisation, GMC/NMC/HCPC,
# directory object id, NHSmail, smartcard UUID, door cardholder id).
person_identifier = sa.Table(
    "person_identifier",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("person_id", sa.ForeignKey("person.id"), nullable=False, index=True),
    sa.Column("scheme", sa.String(40), nullable=False),
    sa.Column("value", sa.String(200), nullable=False),
    # Scope of the identifier (an ODS code for ESR numbers); '' when national (GMC, NMC).
    sa.Column("issuer", sa.String(10), nullable=False, server_default=""),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.UniqueConstraint("scheme", "issuer", "value", name="uq_person_identifier_scheme_value"),
)

assignment = sa.Table(
    "assignment",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("organisation_id", sa.ForeignKey("organisation.id"), nullable=False),
    sa.Column("assignment_number", sa.String(20), nullable=False),
    sa.Column("person_id", sa.ForeignKey("person.id"), nullable=False, index=True),
    sa.Column("employee_number", sa.String(20), nullable=False),
    sa.Column("position_id", sa.ForeignKey("position.id"), nullable=False),
    sa.Column("category", sa.String(40), nullable=False),
    sa.Column("status", sa.String(40), nullable=False),
    sa.Column("is_primary", sa.Boolean, nullable=False),
    sa.Column("start_date", sa.Date, nullable=False),
    sa.Column("end_date", sa.Date, nullable=True),
    sa.Column("supervisor_assignment_number", sa.String(20), nullable=True),
    sa.Column("wte", sa.Numeric(4, 2), nullable=False),
    # Present in the latest accepted extract; false once ended by absence from a full extract.
    sa.Column("in_extract", sa.Boolean, nullable=False, server_default=sa.text("true")),
    # sha256 of the normalised extract row: equal hash means nothing changed (delta = zero).
    sa.Column("row_hash", sa.String(64), nullable=False),
    sa.Column("last_import_id", sa.Integer, nullable=True),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.UniqueConstraint("organisation_id", "assignment_number", name="uq_assignment_org_number"),
)

# SCIM ``enterprise:employeeNumber eq`` of the HR users of one organisation (case-insensitive).
sa.Index(
    "ix_assignment_org_employee_number_lower",
    assignment.c.organisation_id,
    sa.func.lower(assignment.c.employee_number),
)

# Effective-dated history: one row per version of an assignment as the HR record stated it.
assignment_history = sa.Table(
    "assignment_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("assignment_id", sa.ForeignKey("assignment.id"), nullable=False, index=True),
    sa.Column("valid_from", sa.Date, nullable=False),
    sa.Column("valid_to", sa.Date, nullable=True),
    sa.Column("recorded_at", Timestamp, nullable=False),
    sa.Column("import_id", sa.Integer, nullable=True),
    sa.Column("row_hash", sa.String(64), nullable=False),
    sa.Column("data", Json, nullable=False),
)

# --- HR ingest ----------------------------------------------------------------------------

hr_import = sa.Table(
    "hr_import",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("source", sa.String(40), nullable=False),  # esr-extract, api-push
    sa.Column("filename", sa.String(500), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    # received -> applied | held (mass-termination guard) -> approved | rejected | superseded
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("finished_at", Timestamp, nullable=True),
    sa.Column("rows_total", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rows_accepted", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rows_rejected", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rows_warned", sa.Integer, nullable=False, server_default="0"),
    sa.Column("events_new", sa.Integer, nullable=False, server_default="0"),
    sa.Column("events_changed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("events_ended", sa.Integer, nullable=False, server_default="0"),
    sa.Column("active_before", sa.Integer, nullable=False, server_default="0"),
    sa.Column("guard_threshold", sa.Float, nullable=False),
    sa.Column("guard_reason", sa.Text, nullable=True),
    sa.Column("decided_by", sa.String(200), nullable=True),
    sa.Column("decided_at", Timestamp, nullable=True),
    sa.Column("actor", sa.String(200), nullable=False),
)

# Every rejected (or accepted-with-warning) row: row number, field, specific reason.
hr_quarantine = sa.Table(
    "hr_quarantine",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("import_id", sa.ForeignKey("hr_import.id"), nullable=False, index=True),
    sa.Column("row_number", sa.Integer, nullable=False),
    sa.Column("severity", sa.String(10), nullable=False),  # rejected | warning
    sa.Column("field", sa.String(60), nullable=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("value", sa.Text, nullable=True),  # offending value, truncated and escaped
    sa.Column("assignment_number", sa.String(40), nullable=True),
)

# Effective-dated events found by delta detection (new, changed, ended assignments).
hr_event = sa.Table(
    "hr_event",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("import_id", sa.ForeignKey("hr_import.id"), nullable=False, index=True),
    sa.Column("organisation_id", sa.ForeignKey("organisation.id"), nullable=False),
    sa.Column("assignment_number", sa.String(20), nullable=False),
    sa.Column("person_id", sa.Integer, nullable=True, index=True),
    sa.Column("kind", sa.String(20), nullable=False),  # new | changed | ended
    sa.Column("effective_date", sa.Date, nullable=False),
    # held: waiting for guard approval (nothing destructive applied); applied; discarded.
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("changes", Json, nullable=True),
    sa.Column("recorded_at", Timestamp, nullable=False),
)

# Scratch table for one import: the accepted extract rows (bulk-loaded, COPY on PostgreSQL)
# plus working columns the set-based delta fills in. Rows are deleted when the import ends.
hr_staging = sa.Table(
    "hr_staging",
    metadata,
    sa.Column("import_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("row_number", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("row_hash", sa.String(64), nullable=False),
    sa.Column("org_code", sa.String(10), nullable=False),
    sa.Column("employee_number", sa.String(20), nullable=False),
    sa.Column("assignment_number", sa.String(20), nullable=False),
    sa.Column("title", sa.String(20), nullable=True),
    sa.Column("first_name", sa.String(100), nullable=False),
    sa.Column("middle_names", sa.String(100), nullable=True),
    sa.Column("last_name", sa.String(100), nullable=False),
    sa.Column("known_as", sa.String(100), nullable=True),
    sa.Column("date_of_birth", sa.Date, nullable=False),
    sa.Column("ni_number", sa.String(9), nullable=True),
    sa.Column("email", sa.String(254), nullable=True),
    sa.Column("is_primary", sa.Boolean, nullable=False),
    sa.Column("category", sa.String(40), nullable=False),
    sa.Column("status", sa.String(40), nullable=False),
    sa.Column("start_date", sa.Date, nullable=False),
    sa.Column("end_date", sa.Date, nullable=True),
    sa.Column("position_number", sa.String(40), nullable=False),
    sa.Column("position_title", sa.String(200), nullable=False),
    sa.Column("staff_group", sa.String(2), nullable=False),
    sa.Column("job_role_code", sa.String(5), nullable=False),
    sa.Column("area_of_work", sa.String(100), nullable=False),
    sa.Column("occupation_code", sa.String(3), nullable=False),
    sa.Column("grade_code", sa.String(40), nullable=False),
    sa.Column("department_code", sa.String(40), nullable=False),
    sa.Column("department_name", sa.String(200), nullable=False),
    sa.Column("cost_centre", sa.String(40), nullable=False),
    sa.Column("location_code", sa.String(40), nullable=False),
    sa.Column("location_name", sa.String(200), nullable=False),
    sa.Column("supervisor_assignment_number", sa.String(20), nullable=True),
    sa.Column("wte", sa.Numeric(4, 2), nullable=False),
    sa.Column("registration_body", sa.String(10), nullable=True),
    sa.Column("registration_number", sa.String(20), nullable=True),
    # Working columns filled by the delta: resolved ids and the kind of change.
    sa.Column("new_uid", sa.String(36), nullable=True),
    sa.Column("organisation_id", sa.Integer, nullable=True),
    sa.Column("assignment_id", sa.Integer, nullable=True),
    sa.Column("person_id", sa.Integer, nullable=True),
    sa.Column("kind", sa.String(10), nullable=True),
    # No secondary index: every statement on it is a set-based (hash) join, and an index
    # only slows the bulk load.
)

# --- policy ---------------------------------------------------------------------------------

policy_version = sa.Table(
    "policy_version",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("source", sa.String(500), nullable=False),
    sa.Column("document", Json, nullable=False),
    sa.Column("loaded_at", Timestamp, nullable=False),
    sa.Column("loaded_by", sa.String(200), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
)

target = sa.Table(
    "target",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(60), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("connector", sa.String(40), nullable=False),
    # Non-secret settings only; secrets are referenced by environment variable name.
    sa.Column("settings", Json, nullable=False),
    sa.Column("username_template", sa.String(200), nullable=False),
    sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.text("false")),
)

role = sa.Table(
    "role",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(100), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("entitlements", Json, nullable=False),
)

rule = sa.Table(
    "rule",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(100), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("predicate", Json, nullable=False),
    sa.Column("roles", Json, nullable=False),
)

# --- recorded state: accounts and grants PASA has decided and sent to targets -------------

account = sa.Table(
    "account",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("target_id", sa.ForeignKey("target.id"), nullable=False),
    sa.Column("person_id", sa.ForeignKey("person.id"), nullable=False, index=True),
    sa.Column("username", sa.String(200), nullable=False),
    sa.Column("external_id", sa.String(200), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),  # enabled | disabled | deleted
    # The organisation-local date the current status began (retention counts from it).
    sa.Column("status_since", sa.Date, nullable=True),
    sa.Column("attributes", Json, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.UniqueConstraint("target_id", "username", name="uq_account_target_username"),
    sa.UniqueConstraint("target_id", "person_id", name="uq_account_target_person"),
)

account_grant = sa.Table(
    "account_grant",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.ForeignKey("account.id"), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("value", sa.String(200), nullable=False),
    sa.Column("reasons", Json, nullable=False),
    sa.Column("granted_at", Timestamp, nullable=False),
    # Validity sent to targets that store it (door zones from the start date, request ends).
    sa.Column("valid_from", sa.Date, nullable=True),
    sa.Column("valid_to", sa.Date, nullable=True),
    sa.UniqueConstraint("account_id", "kind", "value", name="uq_account_grant_kind_value"),
)

# --- operations ledger ---------------------------------------------------------------------

operation = sa.Table(
    "operation",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
    sa.Column("plan_id", sa.String(36), nullable=False, index=True),
    sa.Column("target_id", sa.ForeignKey("target.id"), nullable=False),
    sa.Column("person_id", sa.ForeignKey("person.id"), nullable=False, index=True),
    sa.Column("account_id", sa.ForeignKey("account.id"), nullable=True),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("username", sa.String(200), nullable=False),
    sa.Column("payload", Json, nullable=False),
    sa.Column("reasons", Json, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("not_before", Timestamp, nullable=True),
    sa.Column("completed_at", Timestamp, nullable=True),
    sa.Index("ix_operation_status_target", "status", "target_id"),
    # The worker's "is an earlier operation of this account still open?" check.
    sa.Index("ix_operation_target_person", "target_id", "person_id", "id"),
)

manual_task = sa.Table(
    "manual_task",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("operation_id", sa.ForeignKey("operation.id"), nullable=False, unique=True),
    sa.Column("target_id", sa.ForeignKey("target.id"), nullable=False),
    sa.Column("assignee", sa.String(200), nullable=False),
    sa.Column("instructions", sa.Text, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # open | done | cancelled
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("due_at", Timestamp, nullable=False),
    sa.Column("completed_at", Timestamp, nullable=True),
    sa.Column("completed_by", sa.String(200), nullable=True),
    sa.Column("completion", Json, nullable=True),  # e.g. {"username": "jsmith2"}
)

# --- audit -----------------------------------------------------------------------------------

# Append-only and hash-chained: hash = sha256(prev_hash || canonical(entry)). Triggers in the
# migration refuse UPDATE and DELETE; `pasa audit verify` detects edits, deletions, reordering.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(60), nullable=False),
    sa.Column("subject_type", sa.String(40), nullable=False),
    sa.Column("subject_id", sa.String(100), nullable=False),
    sa.Column("details", Json, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

# --- reconciliation: targets read back and compared with the recorded state ----------------

# One read-back of one target. ``policy`` is report (nothing written to the target) or correct
# (drift re-applied, orphans disabled); ``counts`` is finding kind -> number of accounts.
reconciliation_run = sa.Table(
    "reconciliation_run",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("target_id", sa.ForeignKey("target.id"), nullable=False, index=True),
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("finished_at", Timestamp, nullable=True),
    sa.Column("policy", sa.String(10), nullable=False),
    sa.Column("counts", Json, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
)

# What a run found about one remote or recorded account (every kind except ``linked``).
reconciliation_finding = sa.Table(
    "reconciliation_finding",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.ForeignKey("reconciliation_run.id"), nullable=False, index=True),
    sa.Column("target_id", sa.ForeignKey("target.id"), nullable=False),
    sa.Column("username", sa.String(200), nullable=False),
    sa.Column("person_id", sa.ForeignKey("person.id"), nullable=True),
    # drifted | unlinked | unmatched | orphan | missing
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("details", Json, nullable=False),
    sa.Column("found_at", Timestamp, nullable=False),
)

# --- lifecycle: states per person and per assignment, and every transition -----------------

# ``scope`` is "" for the person's overall state, else "ODS/assignment number".
lifecycle_state = sa.Table(
    "lifecycle_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("person_id", sa.ForeignKey("person.id"), nullable=False),
    sa.Column("scope", sa.String(40), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),  # pre_hire|active|suspended|leaver|former
    sa.Column("since", sa.Date, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.UniqueConstraint("person_id", "scope", name="uq_lifecycle_state_person_scope"),
)

lifecycle_transition = sa.Table(
    "lifecycle_transition",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("person_id", sa.ForeignKey("person.id"), nullable=False, index=True),
    sa.Column("scope", sa.String(40), nullable=False),
    sa.Column("from_state", sa.String(20), nullable=True),
    sa.Column("to_state", sa.String(20), nullable=False),
    sa.Column("effective_date", sa.Date, nullable=False),
    sa.Column("recorded_at", Timestamp, nullable=False),
)

# --- time-bound grants: approved requests the planner honours between two dates ------------

# ``kind`` NULL means "an account on the target" and nothing more.
access_grant = sa.Table(
    "access_grant",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("person_id", sa.ForeignKey("person.id"), nullable=False, index=True),
    sa.Column("target_key", sa.String(60), nullable=False),
    sa.Column("kind", sa.String(20), nullable=True),
    sa.Column("value", sa.String(200), nullable=False, server_default=""),
    sa.Column("valid_from", sa.Date, nullable=False),
    sa.Column("valid_to", sa.Date, nullable=True),
    sa.Column("justification", sa.Text, nullable=False),
    sa.Column("requested_by", sa.String(200), nullable=False),
    sa.Column("approved_by", sa.String(200), nullable=False),
    sa.Column("approved_at", Timestamp, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # active | revoked
    sa.Column("revoked_by", sa.String(200), nullable=True),
    sa.Column("revoked_at", Timestamp, nullable=True),
)

# --- day-one credential handover -------------------------------------------------------------

# Only a SHA-256 of the one-time activation code is stored; the code itself is shown once.
credential_handover = sa.Table(
    "credential_handover",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.ForeignKey("account.id"), nullable=False, index=True),
    sa.Column("person_id", sa.ForeignKey("person.id"), nullable=False, index=True),
    # waiting | revealed | redeemed | expired | revoked
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("manager_person_id", sa.Integer, nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=True, unique=True),
    sa.Column("revealed_at", Timestamp, nullable=True),
    sa.Column("revealed_by", sa.String(200), nullable=True),
    sa.Column("expires_at", Timestamp, nullable=True),
    sa.Column("redeemed_at", Timestamp, nullable=True),
    sa.Column("failed_attempts", sa.Integer, nullable=False, server_default="0"),
)

# --- rotation batches: a rotation file held, previewed, approved and executed on its date ---

rotation_batch = sa.Table(
    "rotation_batch",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("effective_date", sa.Date, nullable=False),
    # imported | approved | executed | cancelled
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("filename", sa.String(500), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("rows_csv", sa.Text, nullable=False),  # header + the rows that change
    sa.Column("movers", sa.Integer, nullable=False),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("approved_by", sa.String(200), nullable=True),
    sa.Column("approved_at", Timestamp, nullable=True),
    sa.Column("cancelled_by", sa.String(200), nullable=True),
    sa.Column("cancelled_at", Timestamp, nullable=True),
    sa.Column("cancel_reason", sa.Text, nullable=True),
    sa.Column("executed_at", Timestamp, nullable=True),
    sa.Column("import_id", sa.Integer, nullable=True),
    sa.Column("plan_id", sa.String(36), nullable=True),
    sa.Column("preview", Json, nullable=True),
    sa.Column("report", Json, nullable=True),
)

# --- who may use PASA: granted roles and API tokens ---------------------------------------

# A role granted to a user (their sign-in name: the OIDC ``preferred_username`` / e-mail),
# in one organisation (NULL: every one, for platform admins) and, for a system owner, over
# one target. Line manager and staff are not stored: they follow from HR.
role_binding = sa.Table(
    "role_binding",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("subject", sa.String(254), nullable=False, index=True),
    sa.Column("role", sa.String(30), nullable=False),
    sa.Column("organisation_id", sa.ForeignKey("organisation.id"), nullable=True),
    sa.Column("target_key", sa.String(60), nullable=True),
    sa.Column("granted_by", sa.String(200), nullable=False),
    sa.Column("granted_at", Timestamp, nullable=False),
    sa.Column("revoked_by", sa.String(200), nullable=True),
    sa.Column("revoked_at", Timestamp, nullable=True),
)

# Only a SHA-256 of the token is stored (tokens are 256 random bits: a slow hash adds
# nothing); the token itself is shown once, when created. ``prefix`` identifies it in lists.
api_token = sa.Table(
    "api_token",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("organisation_id", sa.ForeignKey("organisation.id"), nullable=False),
    sa.Column("scopes", Json, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
    sa.Column("last_used_at", Timestamp, nullable=True),
    sa.Column("revoked_by", sa.String(200), nullable=True),
    sa.Column("revoked_at", Timestamp, nullable=True),
)

# --- SCIM 2.0 service provider: users created through SCIM, and groups ----------------------

# A person created by an organisation's SCIM client (see pasa.service.scim). The person row
# holds the names and primary e-mail; this row holds what only SCIM knows, the whole SCIM
# document as the client wrote it, and the columns filters are translated to.
# ``user_name_key`` is the lower-cased userName (NULL once deleted, freeing the name).
scim_user = sa.Table(
    "scim_user",
    metadata,
    sa.Column("person_id", sa.ForeignKey("person.id"), primary_key=True, autoincrement=False),
    sa.Column("organisation_id", sa.ForeignKey("organisation.id"), nullable=False),
    sa.Column("user_name", sa.String(254), nullable=False),
    sa.Column("user_name_key", sa.String(254), nullable=True),
    sa.Column("external_id", sa.String(200), nullable=True),
    sa.Column("display_name", sa.String(200), nullable=True),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("employee_number", sa.String(40), nullable=True),
    sa.Column("document", Json, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Column("deleted_at", Timestamp, nullable=True),
    sa.UniqueConstraint("organisation_id", "user_name_key", name="uq_scim_user_org_user_name"),
    sa.Index("ix_scim_user_org_external_id", "organisation_id", "external_id"),
)

sa.Index(
    "ix_scim_user_org_employee_number_lower",
    scim_user.c.organisation_id,
    sa.func.lower(scim_user.c.employee_number),
)

# The e-mail addresses of SCIM-created users, one row each (filters on ``emails[...]``).
scim_user_email = sa.Table(
    "scim_user_email",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("person_id", sa.ForeignKey("person.id"), nullable=False, index=True),
    sa.Column("value", sa.String(254), nullable=False, index=True),
    sa.Column("type", sa.String(40), nullable=True),
    sa.Column("is_primary", sa.Boolean, nullable=False),
)

sa.Index("ix_scim_user_email_value_lower", sa.func.lower(scim_user_email.c.value))

# Groups of one organisation, managed by its SCIM client; members are people (users).
scim_group = sa.Table(
    "scim_group",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uid", sa.String(36), nullable=False, unique=True),
    sa.Column("organisation_id", sa.ForeignKey("organisation.id"), nullable=False, index=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("external_id", sa.String(200), nullable=True),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

scim_group_member = sa.Table(
    "scim_group_member",
    metadata,
    sa.Column("group_id", sa.ForeignKey("scim_group.id"), primary_key=True),
    sa.Column("person_id", sa.ForeignKey("person.id"), primary_key=True, index=True),
)

# --- Digital Staff Passport issuer (OpenID4VCI; see pasa.service.passport_issuer) ------------

# Issuer signing keys (ES256). The private key only as AES-256-GCM ciphertext bound to the kid
# (pasa.passport.keys); the current key has no ``retired_at``. A retired key is published in
# the JWKS until ``publish_until`` (the latest ``exp`` it signed plus a grace period).
passport_issuer_key = sa.Table(
    "passport_issuer_key",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kid", sa.String(64), nullable=False, unique=True),
    sa.Column("public_jwk", Json, nullable=False),
    sa.Column("private_key_encrypted", sa.Text, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("retired_at", Timestamp, nullable=True),
    sa.Column("signed_until", Timestamp, nullable=True),
    sa.Column("publish_until", Timestamp, nullable=True),
)

# Token Status Lists: ``bits`` per entry, the packed bytes, and the last signed token.
passport_status_list = sa.Table(
    "passport_status_list",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uid", sa.String(36), nullable=False, unique=True),
    sa.Column("bits", sa.Integer, nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("token", sa.Text, nullable=True),
    sa.Column("signed_at", Timestamp, nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

# Every credential issued: whose, which type (and assignment), where its status lives.
# (status_list_id, status_idx) is unique: an index is never handed out twice.
passport_credential = sa.Table(
    "passport_credential",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uid", sa.String(36), nullable=False, unique=True),
    sa.Column("person_id", sa.ForeignKey("person.id"), nullable=False, index=True),
    sa.Column("assignment_id", sa.ForeignKey("assignment.id"), nullable=True, index=True),
    sa.Column("vct", sa.String(100), nullable=False),
    sa.Column("status_list_id", sa.ForeignKey("passport_status_list.id"), nullable=False),
    sa.Column("status_idx", sa.Integer, nullable=False),
    sa.Column("kid", sa.String(64), nullable=False),
    sa.Column("offer_id", sa.Integer, nullable=True),
    sa.Column("issued_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
    sa.Column("state", sa.String(12), nullable=False),  # valid | revoked | suspended
    sa.Column("state_reason", sa.String(60), nullable=True),
    sa.Column("state_changed_at", Timestamp, nullable=True),
    # SHA-256 of the attested claims: a changed HR record re-issues (None: issued before 0011).
    sa.Column("claims_digest", sa.String(64), nullable=True),
    sa.UniqueConstraint("status_list_id", "status_idx", name="uq_passport_credential_status"),
)

# Credential offers (pre-authorized code flow). Only hashes of the pre-authorized code and
# of the transaction code; the code itself also encrypted (for the offer by reference).
passport_offer = sa.Table(
    "passport_offer",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uid", sa.String(64), nullable=False, unique=True),
    sa.Column("code_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("code_encrypted", sa.Text, nullable=False),
    sa.Column("tx_code_hash", sa.String(64), nullable=False),
    sa.Column("person_id", sa.ForeignKey("person.id"), nullable=False, index=True),
    sa.Column("configuration_ids", Json, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
    sa.Column("failed_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("used_at", Timestamp, nullable=True),
)

# c_nonce values from the Nonce Endpoint, single use.
passport_nonce = sa.Table(
    "passport_nonce",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("nonce_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
    sa.Column("used_at", Timestamp, nullable=True),
)

# Access tokens for the credential endpoint, from a redeemed offer (hash only).
passport_access_token = sa.Table(
    "passport_access_token",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("offer_id", sa.ForeignKey("passport_offer.id"), nullable=False, index=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
)

# --- access requests, approvals and notifications (issue 6; migration 0008) ---

# A request for one catalogue item (policy ``requestable``) for one person, and its route.
access_request = sa.Table(
    "access_request",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("person_id", sa.ForeignKey("person.id"), nullable=False, index=True),
    sa.Column("organisations", Json, nullable=False),  # the person's ODS codes when asked
    sa.Column("item_key", sa.String(60), nullable=False),
    sa.Column("target_key", sa.String(60), nullable=False, index=True),
    sa.Column("kind", sa.String(20), nullable=True),
    sa.Column("value", sa.String(200), nullable=False, server_default=""),
    sa.Column("justification", sa.Text, nullable=False),
    sa.Column("valid_from", sa.Date, nullable=False),
    sa.Column("valid_to", sa.Date, nullable=True),
    sa.Column("requested_by", sa.String(200), nullable=False, index=True),
    sa.Column("requester_person_id", sa.Integer, nullable=True),
    sa.Column("stages", Json, nullable=False),  # ordered approval stages
    sa.Column("sla_hours", sa.Integer, nullable=False),
    # submitted | awaiting_line_manager | awaiting_system_owner | approved | rejected |
    # withdrawn | expired
    sa.Column("state", sa.String(30), nullable=False, index=True),
    sa.Column("submitted_at", Timestamp, nullable=False),
    sa.Column("stage_since", Timestamp, nullable=True),
    sa.Column("reminded_at", Timestamp, nullable=True),  # reminder sent for this stage
    sa.Column("escalated_at", Timestamp, nullable=True),
    sa.Column("closed_at", Timestamp, nullable=True),
    sa.Column("closed_by", sa.String(200), nullable=True),
    sa.Column("grant_id", sa.ForeignKey("access_grant.id"), nullable=True),
)

access_request_decision = sa.Table(
    "access_request_decision",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("request_id", sa.ForeignKey("access_request.id"), nullable=False, index=True),
    sa.Column("stage", sa.String(20), nullable=False),
    sa.Column("decided_by", sa.String(200), nullable=False),
    sa.Column("approved", sa.Boolean, nullable=False),
    sa.Column("by_request", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("decided_at", Timestamp, nullable=False),
)

# Email outbox: written in the transaction of the change it tells about, sent by the
# scheduler (SMTP) or, with no SMTP host, written to the log and kept here.
notification = sa.Table(
    "notification",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("recipient", sa.String(320), nullable=False),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("request_id", sa.ForeignKey("access_request.id"), nullable=True, index=True),
    sa.Column("status", sa.String(12), nullable=False, index=True),  # pending | sent | logged
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("sent_at", Timestamp, nullable=True),
)

# --- passport verifier (issue 7; migration 0009) ---

# Trust registry: which issuer (at which organisation) may issue which credential type.
passport_trusted_issuer = sa.Table(
    "passport_trusted_issuer",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("issuer", sa.String(300), nullable=False),
    sa.Column("organisation_code", sa.String(10), nullable=False),
    sa.Column("vct", sa.String(100), nullable=False),
    sa.Column("added_by", sa.String(200), nullable=False),
    sa.Column("added_at", Timestamp, nullable=False),
    sa.UniqueConstraint("issuer", "vct", name="uq_passport_trusted_issuer_issuer_vct"),
)

# One presentation request for an expected starter. ``state`` is the session id the wallet
# returns; only SHA-256 of the nonce is kept. pending -> accepted (single use) | expired.
passport_verifier_session = sa.Table(
    "passport_verifier_session",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("state", sa.String(64), nullable=False, unique=True),
    sa.Column("nonce_hash", sa.String(64), nullable=False),
    sa.Column("organisation_id", sa.ForeignKey("organisation.id"), nullable=False, index=True),
    sa.Column("query_ids", Json, nullable=False),
    sa.Column("given_name", sa.String(100), nullable=False),
    sa.Column("family_name", sa.String(100), nullable=False),
    sa.Column("start_date", sa.Date, nullable=False),
    sa.Column("position_id", sa.ForeignKey("position.id"), nullable=False),
    sa.Column("requested_by", sa.String(200), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("completed_at", Timestamp, nullable=True),
    sa.Column("person_id", sa.ForeignKey("person.id"), nullable=True),
)

# Every check outcome: accepted, or the specific reason it was rejected; what was disclosed
# (claim names per credential, never values), by which issuer, when status was checked.
passport_verification = sa.Table(
    "passport_verification",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("session_id", sa.ForeignKey("passport_verifier_session.id"), nullable=True),
    sa.Column("outcome", sa.String(12), nullable=False),  # accepted | rejected
    sa.Column("reason", sa.String(60), nullable=True),
    sa.Column("detail", sa.String(300), nullable=True),
    sa.Column("relied_on", Json, nullable=True),
    sa.Column("status_checked_at", Timestamp, nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index("ix_passport_verification_session_id", "session_id"),
)

# Status List Tokens fetched from issuers, reused until their ttl (capped by exp) runs out.
passport_status_cache = sa.Table(
    "passport_status_cache",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uri", sa.String(500), nullable=False, unique=True),
    sa.Column("issuer", sa.String(300), nullable=False),
    sa.Column("token", sa.Text, nullable=False),
    sa.Column("fetched_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
)

# --- pre-employment checks (issue 7; migration 0010) ---

# One recorded pre-employment check: ``attributes`` are the claims of the passport credential
# for ``kind`` (pasa.passport.vc) minus the names, which come from the person. A newer check
# of the same kind sets ``superseded_at`` on the older one; history is kept.
pre_employment_check = sa.Table(
    "pre_employment_check",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("person_id", sa.ForeignKey("person.id"), nullable=False, index=True),
    sa.Column("organisation_id", sa.ForeignKey("organisation.id"), nullable=False),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("attributes", Json, nullable=False),
    sa.Column("checked_on", sa.Date, nullable=False),
    sa.Column("expires_on", sa.Date, nullable=True),
    sa.Column("recorded_by", sa.String(200), nullable=False),
    sa.Column("recorded_at", Timestamp, nullable=False),
    sa.Column("superseded_at", Timestamp, nullable=True),
)
