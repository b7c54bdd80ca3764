"""HL7 v2 as this interface reads and answers it: ORU^R01 in (v2.3 to v2.5.1), ACK out, MLLP framing. Plain
Python, no Django: parsing is the `hl7` package's; this module picks out what the clinic stores and says clearly
what it cannot read.

Numbering follows the standard (MSH-10 is the control id, OBX-11 the result status) and messages are text with
segments separated by CR.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

import hl7

SUPPORTED_VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1")
SUPPORTED_TYPE = "ORU^R01"

# MLLP: <VT> message <FS><CR>
START_BLOCK, END_BLOCK, CARRIAGE_RETURN = b"\x0b", b"\x1c", b"\r"
MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # far above any lab report; a stream that never ends a block is cut off here

# HL7 table 0357, the error codes an ERR segment gives.
SEGMENT_SEQUENCE_ERROR = "100"
REQUIRED_FIELD_MISSING = "101"
DATA_TYPE_ERROR = "102"
UNSUPPORTED_MESSAGE_TYPE = "200"
UNSUPPORTED_EVENT = "201"
UNSUPPORTED_PROCESSING_ID = "202"
UNSUPPORTED_VERSION = "203"
UNKNOWN_KEY = "204"
INTERNAL_ERROR = "207"
ERROR_TEXTS = {
    SEGMENT_SEQUENCE_ERROR: "Segment sequence error",
    REQUIRED_FIELD_MISSING: "Required field missing",
    DATA_TYPE_ERROR: "Data type error",
    UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    UNSUPPORTED_EVENT: "Unsupported event code",
    UNSUPPORTED_PROCESSING_ID: "Unsupported processing id",
    UNSUPPORTED_VERSION: "Unsupported version id",
    UNKNOWN_KEY: "Unknown key identifier",
    INTERNAL_ERROR: "Application internal error",
}

_SEGMENT_ID = re.compile(r"^[A-Z][A-Z0-9]{2}$")
_TIMESTAMP = re.compile(
    r"^(?P<year>\d{4})(?P<month>\d{2})?(?P<day>\d{2})?(?P<hour>\d{2})?(?P<minute>\d{2})?(?P<second>\d{2})?"
    r"(?:\.(?P<fraction>\d{1,4}))?(?P<zone>[+-]\d{4})?$"
)


class Refusal(Exception):  # noqa: N818  (a refusal is an answer, not a fault)
    """The message is refused: `ack` AR (it cannot be taken: malformed, unknown sender, wrong type) or AE (it was
    read, but something in it cannot be stored). `text` is for the lab's staff, `error_code` from table 0357."""

    def __init__(self, ack: str, text: str, error_code: str = DATA_TYPE_ERROR, location: str = ""):
        super().__init__(text)
        self.ack, self.text, self.error_code, self.location = ack, text, error_code, location


def rejected(text: str, error_code: str = DATA_TYPE_ERROR, location: str = "") -> Refusal:
    return Refusal("AR", text, error_code, location)


@dataclass(frozen=True)
class Header:
    sending_application: str = ""
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    control_id: str = ""
    message_type: str = ""  # "ORU^R01"
    version: str = ""
    processing_id: str = ""


@dataclass(frozen=True)
class Identifier:
    value: str
    authority: tuple[str, ...]  # CX.4's namespace id and universal id, whichever are given


@dataclass(frozen=True)
class PatientIdentity:
    identifiers: tuple[Identifier, ...]
    family_name: str = ""
    given_name: str = ""
    birth_date: datetime.date | None = None
    sex: str = ""  # PID-8 as sent: F, M, O, U, A, N

    def identifiers_text(self) -> str:
        return "; ".join(f"{i.value} ({'/'.join(a for a in i.authority if a) or 'no authority'})"
                         for i in self.identifiers)  # fmt: skip


@dataclass(frozen=True)
class Result:
    """One OBX as read, not yet checked against the catalog."""

    set_id: str
    position: int  # 1-based among the message's OBX segments, for messages that repeat or omit OBX-1
    value_type: str
    code: str
    text: str
    system: str
    alt_code: str
    alt_system: str
    value: str  # OBX-5 as sent (the first repetition; an SN keeps its components joined by ^)
    unit: str
    flag: str
    status: str
    specimen_at: datetime.datetime | None  # OBR-7, else OBX-14; naive when the message gives no offset

    @property
    def label(self) -> str:
        """How the log names this result: "OBX 3 (2345-7 Glucose)"."""
        code = " ".join(part for part in (self.code, self.text) if part)
        return f"OBX {self.set_id or self.position}" + (f" ({code})" if code else "")


@dataclass
class PatientResults:
    patient: PatientIdentity
    results: list[Result] = field(default_factory=list)


@dataclass
class OruMessage:
    header: Header
    groups: list[PatientResults]

    @property
    def result_count(self) -> int:
        return sum(len(group.results) for group in self.groups)


def normalize(text: str) -> str:
    """Segments separated by CR whatever the file or sender used (CRLF, LF); no blank segments."""
    lines = text.replace("\r\n", "\r").replace("\n", "\r").split("\r")
    return "\r".join(line for line in lines if line.strip())


def split_messages(text: str) -> list[str]:
    """The messages of a file: each starts at an MSH segment; batch and file envelopes (FHS, BHS, BTS, FTS) are
    dropped. Anything before the first MSH is returned as a message of its own, so it is refused, not lost."""
    messages: list[list[str]] = []
    for segment in normalize(text).split("\r"):
        kind = segment[:3]
        if kind in ("FHS", "BHS", "BTS", "FTS"):
            continue
        if kind == "MSH" or not messages:
            messages.append([segment])
        else:
            messages[-1].append(segment)
    return ["\r".join(segments) for segments in messages]


def _parse(text: str) -> hl7.Message:
    if not text.startswith("MSH") or len(text) < 8:
        raise rejected("The message does not start with an MSH segment.", SEGMENT_SEQUENCE_ERROR, "MSH")
    try:
        message = hl7.parse(text)
    except (ValueError, IndexError, KeyError) as exc:
        raise rejected(f"The message cannot be parsed as HL7 v2: {exc}.", SEGMENT_SEQUENCE_ERROR) from exc
    for number, segment in enumerate(message, start=1):
        name = str(segment[0])
        if not _SEGMENT_ID.match(name):
            raise rejected(f"Segment {number} has no valid segment name ({name[:10]!r}): the message is malformed "
                           "or was cut.", SEGMENT_SEQUENCE_ERROR, f"segment {number}")  # fmt: skip
    return message


def _get(segment: hl7.Segment, number: int, component: int = 1, subcomponent: int = 1, repetition: int = 1) -> str:
    """A field's value, "" when absent; never raises for a short segment (a sender may leave trailing fields off)."""
    if number >= len(segment):
        return ""
    try:
        return str(segment.extract_field(1, number, repetition, component, subcomponent)).strip()
    except IndexError:
        return ""


def _repetitions(segment: hl7.Segment, number: int) -> int:
    return len(segment(number)) if number < len(segment) else 0


def header_read(text: str) -> Header:
    """MSH of a message, as far as it can be read: what an acknowledgement needs even for a malformed message."""
    message = _parse(text)
    msh = message.segment("MSH")
    kind = "^".join(part for part in (_get(msh, 9, 1), _get(msh, 9, 2)) if part)
    return Header(
        sending_application=_get(msh, 3), sending_facility=_get(msh, 4),
        receiving_application=_get(msh, 5), receiving_facility=_get(msh, 6),
        control_id=_get(msh, 10), message_type=kind, version=_get(msh, 12), processing_id=_get(msh, 11),
    )  # fmt: skip


def header_check(header: Header) -> None:
    """Refuse (AR) what this interface does not take: another message type, version, or a test message."""
    if not header.control_id:
        raise rejected("MSH-10 (message control id) is empty.", REQUIRED_FIELD_MISSING, "MSH-10")
    if not header.sending_facility:
        raise rejected("MSH-4 (sending facility) is empty.", REQUIRED_FIELD_MISSING, "MSH-4")
    if header.message_type.split("^")[0] != "ORU":
        raise rejected(f"Message type {header.message_type or '(none)'} is not accepted: this interface takes "
                       f"{SUPPORTED_TYPE} only.", UNSUPPORTED_MESSAGE_TYPE, "MSH-9")  # fmt: skip
    if header.message_type != SUPPORTED_TYPE:
        raise rejected(f"Event {header.message_type} is not accepted: this interface takes {SUPPORTED_TYPE} only.",
                       UNSUPPORTED_EVENT, "MSH-9")  # fmt: skip
    if header.version not in SUPPORTED_VERSIONS:
        raise rejected(f"HL7 version {header.version or '(none)'} is not accepted; accepted: "
                       f"{', '.join(SUPPORTED_VERSIONS)}.", UNSUPPORTED_VERSION, "MSH-12")  # fmt: skip
    if header.processing_id[:1] != "P":
        # A training or debugging message must never reach a patient's record.
        raise rejected(f"Processing id {header.processing_id or '(none)'} is not accepted: this interface stores "
                       "production results only (MSH-11 P).", UNSUPPORTED_PROCESSING_ID, "MSH-11")  # fmt: skip


def timestamp_read(text: str, where: str) -> datetime.datetime | None:
    """An HL7 DTM/TS (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]) to a datetime, naive without an offset; "" is None.
    Only the year and month may be missing from the end; a date without a day is refused (a result needs one)."""
    text = text.strip()
    if not text:
        return None
    found = _TIMESTAMP.match(text)
    if not found or not found["day"]:
        raise Refusal("AE", f"{where} is not a date and time HL7 can read (YYYYMMDD[HHMM[SS]][+ZZZZ]): {text!r}.",
                      DATA_TYPE_ERROR, where)  # fmt: skip
    parts = {name: int(found[name] or 0) for name in ("year", "month", "day", "hour", "minute", "second")}
    microsecond = int((found["fraction"] or "0").ljust(6, "0"))
    zone = None
    if offset := found["zone"]:
        minutes = int(offset[1:3]) * 60 + int(offset[3:5])
        zone = datetime.timezone(datetime.timedelta(minutes=-minutes if offset[0] == "-" else minutes))
    try:
        return datetime.datetime(**parts, microsecond=microsecond, tzinfo=zone)
    except ValueError as exc:
        raise Refusal("AE", f"{where} is not a real date and time: {text!r} ({exc}).", DATA_TYPE_ERROR, where) from exc


def _patient(pid: hl7.Segment) -> PatientIdentity:
    identifiers = []
    for repetition in range(1, _repetitions(pid, 3) + 1):
        value = _get(pid, 3, 1, repetition=repetition)
        if value:
            authority = (_get(pid, 3, 4, 1, repetition), _get(pid, 3, 4, 2, repetition))
            identifiers.append(Identifier(value, tuple(a for a in authority if a)))
    born = timestamp_read(_get(pid, 7), "PID-7")
    return PatientIdentity(
        identifiers=tuple(identifiers), family_name=_get(pid, 5, 1), given_name=_get(pid, 5, 2),
        birth_date=born.date() if born else None, sex=_get(pid, 8).upper(),
    )  # fmt: skip


def _result(obx: hl7.Segment, position: int, specimen_at: datetime.datetime | None) -> Result:
    set_id = _get(obx, 1)
    where = f"OBX {set_id or position}"
    status = _get(obx, 11).upper()
    if not status:
        raise rejected(f"{where} has no result status (OBX-11): the message may have been cut.",
                       REQUIRED_FIELD_MISSING, f"{where}-11")  # fmt: skip
    value_type = _get(obx, 2).upper()
    value = str(obx(5)(1)) if _repetitions(obx, 5) and value_type == "SN" else _get(obx, 5)
    return Result(
        set_id=set_id, position=position, value_type=value_type,
        code=_get(obx, 3, 1), text=_get(obx, 3, 2), system=_get(obx, 3, 3).upper(),
        alt_code=_get(obx, 3, 4), alt_system=_get(obx, 3, 6).upper(),
        value=value, unit=_get(obx, 6, 1) or _get(obx, 6, 2), flag=_get(obx, 8).upper(), status=status,
        specimen_at=specimen_at or timestamp_read(_get(obx, 14), f"{where}-14"),
    )  # fmt: skip


def oru_read(text: str) -> OruMessage:
    """An ORU^R01 message's patients and their results, in message order. Refuses (AR) a message that is not one
    or whose structure is broken: results before any patient, a patient without results, an OBX without status."""
    message = _parse(text)
    header = header_read(text)
    header_check(header)
    groups: list[PatientResults] = []
    specimen_at: datetime.datetime | None = None
    position = 0
    for segment in message:
        kind = str(segment[0])
        if kind == "PID":
            groups.append(PatientResults(_patient(segment)))
            specimen_at = None
        elif kind == "OBR":
            specimen_at = timestamp_read(_get(segment, 7), "OBR-7")
        elif kind == "OBX":
            position += 1
            if not groups:
                raise rejected("An OBX segment comes before any PID: the results name no patient.",
                               SEGMENT_SEQUENCE_ERROR, f"OBX {position}")  # fmt: skip
            groups[-1].results.append(_result(segment, position, specimen_at))
    if not groups:
        raise rejected("The message has no PID segment: the results name no patient.", SEGMENT_SEQUENCE_ERROR, "PID")
    for number, group in enumerate(groups, start=1):
        if not group.results:
            raise rejected(f"Patient {number} of the message (PID) has no OBX results: the message may have been cut.",
                           SEGMENT_SEQUENCE_ERROR, "OBX")  # fmt: skip
    return OruMessage(header=header, groups=groups)


# --- numbers ------------------------------------------------------------------------------------------------------


def numeric_value(result: Result) -> float | None:
    """OBX-5 as a number for NM, and for SN when it is a plain number ("^5.2" or "=^5.2"); None for anything else
    (text, a comparator such as "<^0.1", a range or a ratio), which is listed, not stored."""
    if result.value_type == "NM":
        text = result.value
    elif result.value_type == "SN":
        parts = (result.value.split("^") + ["", "", "", ""])[:4]
        if parts[0] not in ("", "=") or parts[2] or parts[3]:
            return None
        text = parts[1]
    else:
        return None
    try:
        number = float(text.strip())
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


# --- acknowledgements ---------------------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Text made safe for one HL7 field (the default delimiters |^~\\&)."""
    text = text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\")
    text = text.replace("&", "\\T\\").replace("~", "\\R\\")
    return " ".join(text.split())  # no CR or LF inside a field


def ack_build(
    *,
    header: Header | None,
    code: str,
    control_id: str,
    text: str = "",
    error_code: str = "",
    location: str = "",
    now: datetime.datetime,
    application: str = "CLINIC",
    facility: str = "",
) -> str:
    """An original-mode ACK for a message (its header as read, or None when MSH could not be read): MSA-1 the code,
    MSA-2 the message's control id, MSA-3 the reason (short) and, on AE or AR, an ERR segment with the whole
    reason and the table 0357 code. Laid out as the message's version expects (ERR-1 before 2.5, ERR-3 from 2.5)."""
    header = header or Header()
    version = header.version if header.version in SUPPORTED_VERSIONS else "2.5.1"
    trigger = header.message_type.split("^")[1] if "^" in header.message_type else ""
    msh = "|".join([
        "MSH", "^~\\&", escape(application), escape(facility or header.receiving_facility),
        escape(header.sending_application), escape(header.sending_facility), f"{now:%Y%m%d%H%M%S}", "",
        f"ACK^{escape(trigger)}^ACK" if trigger else "ACK", escape(control_id), "P", version,
    ])  # fmt: skip
    msa = "|".join(["MSA", code, escape(header.control_id), escape(text)[:80]])
    segments = [msh, msa]
    if code != "AA" and text:
        error_code = error_code or INTERNAL_ERROR
        coded = f"{error_code}^{escape(ERROR_TEXTS.get(error_code, ''))}^HL70357"
        if version in ("2.5", "2.5.1"):
            segments.append("|".join(["ERR", "", escape(location), coded, "E", "", "", "", escape(text)]))
        else:
            segments.append(f"ERR|{escape(location)}^^^{error_code}&{escape(text)}")
    return "\r".join(segments) + "\r"


def ack_code_of(ack: str) -> str:
    """MSA-1 of an acknowledgement (for the command line and the tests)."""
    for segment in normalize(ack).split("\r"):
        if segment.startswith("MSA|"):
            return segment.split("|")[1]
    return ""


# --- MLLP ---------------------------------------------------------------------------------------------------------


def frame(text: str, encoding: str = "utf-8") -> bytes:
    return START_BLOCK + text.encode(encoding) + END_BLOCK + CARRIAGE_RETURN


class FramingError(ValueError):
    """The stream broke MLLP framing beyond repair (a block too large): the connection is closed."""


class MllpReader:
    """Splits a byte stream into the messages of its <VT>...<FS><CR> blocks; bytes outside a block are dropped."""

    def __init__(self, max_bytes: int = MAX_MESSAGE_BYTES):
        self.buffer = bytearray()
        self.max_bytes = max_bytes

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer.extend(data)
        messages = []
        while True:
            start = self.buffer.find(START_BLOCK)
            if start < 0:
                self.buffer.clear()
                break
            end = self.buffer.find(END_BLOCK + CARRIAGE_RETURN, start)
            if end < 0:
                del self.buffer[:start]
                if len(self.buffer) > self.max_bytes:
                    raise FramingError(f"An MLLP block exceeds {self.max_bytes} bytes without its end.")
                break
            messages.append(bytes(self.buffer[start + 1 : end]))
            del self.buffer[: end + 2]
        return messages


def decode(data: bytes) -> str:
    """Messages are read as UTF-8 (HL7's preferred character set); a lab still on Latin-1 is read as such rather
    than refused (every byte is a character there)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")
