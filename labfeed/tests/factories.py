"""Hand-written ORU^R01 messages for the tests: a builder for one-off messages; whole files live in messages/."""

from pathlib import Path

MESSAGES = Path(__file__).parent / "messages"
FACILITY = "CENTRAL LAB"
AUTHORITY = "RIVERSIDE"
MRN = "RV1001"
TAKEN = "202601150830"  # OBR-7, the specimen time (clinic's local time: no offset)


def obx(n: int, code: str, value: str, unit: str, status: str = "F", flag: str = "", *, system: str = "LN",
        text: str = "", value_type: str = "NM", alternate: str = "") -> str:  # fmt: skip
    """OBX-1 set id, -2 value type, -3 code^text^system (then `alternate`, "code^text^system" of the same test in
    another coding system), -5 value, -6 unit, -8 abnormal flag, -11 status."""
    identifier = f"{code}^{text}^{system}" + (f"^{alternate}" if alternate else "")
    return f"OBX|{n}|{value_type}|{identifier}||{value}|{unit}||{flag}|||{status}"


def oru(*segments: str, control_id: str = "MSG0001", facility: str = FACILITY, version: str = "2.5.1",
        mrn: str = MRN, authority: str = AUTHORITY, taken: str = TAKEN, born: str = "19800517", sex: str = "F",
        message_type: str = "ORU^R01", processing: str = "P") -> str:  # fmt: skip
    return "\r".join([
        f"MSH|^~\\&|LIS|{facility}|CLINIC|RIVERSIDE|20260115093000||{message_type}|{control_id}|{processing}|{version}",
        f"PID|1||{mrn}^^^{authority}^MR~H-77^^^OTHER HOSPITAL^MR||Doe^Jane||{born}|{sex}",
        f"OBR|1|ORD1|LAB1|CHEM^Chemistry panel|||{taken}",
        *segments,
    ]) + "\r"  # fmt: skip


def potassium(value: str = "4.2", status: str = "F", flag: str = "", unit: str = "mmol/L", n: int = 1) -> str:
    return obx(n, "2823-3", value, unit, status, flag, text="Potassium")


def sodium(value: str = "140", status: str = "F", n: int = 2) -> str:
    return obx(n, "2951-2", value, "mmol/L", status, text="Sodium")
