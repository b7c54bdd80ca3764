"""The cases the platform must hold up against: the one list the report and the plugin read."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    number: int
    group: str
    claim: str


CASES = [
    Case(1, "Access", "Another clinic's user and each lower role get 404 (or 403) on every object URL and API "
         "endpoint, and the denial is audited"),
    Case(2, "Access", "Read-only fields (approval status, reviewer, model version, clinic, role) cannot be "
         "mass-assigned"),
    Case(3, "Access", "Non-admins cannot reach the admin or retraining actions"),
    Case(4, "Access", "Login lockout per username and address; cycling usernames locks out no one else"),
    Case(5, "Access", "Session id rotates at login, old cookie dead after logout, idle timeout, secure cookies"),
    Case(6, "Access", "CSRF is enforced on every session-authenticated write"),
    Case(7, "Access", "Weak passwords are refused; stored hashes are Argon2"),
    Case(8, "Input", "Unknown or SQL-laden ordering and filter parameters: ignored or 400, never 500"),
    Case(9, "Input", "Stored XSS in free-text fields is escaped in the portal, the admin and exports"),
    Case(10, "Input", "Lab values NaN, Infinity, negative, 1e308, wrong unit, text: clear 400, nothing written"),
    Case(11, "Input", "Malformed CSV and FHIR files: clear error, nothing written"),
    Case(12, "Input", "Schemathesis against the OpenAPI schema: no 5xx, responses match the schema"),
    Case(13, "Audit", "Every read of patient data creates exactly the documented audit rows"),
    Case(14, "Audit", "Audit rows cannot be changed by the application's role; tampering is detected"),
    Case(15, "Audit", "The audit report filters by user, patient, action and date"),
    Case(16, "Faults", "A worker killed mid-chunk: the chunk re-runs, no duplicate and no lost predictions"),
    Case(17, "Faults", "Redis restarted mid-batch: the batch completes"),
    Case(18, "Faults", "A task enqueued in a transaction that rolls back never runs"),
    Case(19, "Faults", "PostgreSQL connection dropped mid-write: no partial batch, the chunk retries"),
    Case(20, "Faults", "Corrupt or missing model artifact: clear failure, earlier results stay, rollback works"),
    Case(21, "Faults", "A server error shows a generic page with a request id; logs hold no secrets or records"),
    Case(22, "Faults", "Redis down: pages and the API answer (sessions from the database, the cache a miss), "
         "/healthz says 503 degraded, a write that succeeded says so and its prediction request waits in the outbox"),
    Case(23, "Audit", "The audit table's owner cannot rewrite it unnoticed: TRUNCATE refused, hashes keyed outside the "
         "database, a checkpoint outside it catches a shortened, truncated or re-hashed chain"),
    Case(24, "Faults", "A whole worker group killed mid-batch: its chunks are sent again within minutes"),
    # Security, second round (issue 30).
    Case(25, "Access", "API tokens are stored as digests, die after the idle time and at a maximum age, are revoked "
         "by logout, portal sign-out and password change; issuing and revoking are audited; no or a dead token: 401"),
    Case(26, "Access", "Password spraying from one address is refused before any password is hashed, at the login "
         "and the token endpoint; other addresses sign in; the API throttles anonymous and signed-in callers"),
    Case(27, "Input", "Over-long credentials at the login and the token endpoint, and the browsable API in a "
         "browser: a clear answer, never a 500"),
    Case(28, "Access", "Headers: a Content-Security-Policy without inline scripts, no-store on authenticated "
         "answers; anonymous /healthz names no host; a client's request id never enters the audit trail as sent"),
    Case(29, "Faults", "A second batch for a clinic is refused while one runs; a retried chunk counts its attempts"),
]  # fmt: skip

CASE_NUMBERS = {case.number for case in CASES}
