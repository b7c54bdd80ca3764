"""The parser, the acknowledgements and MLLP framing: plain Python, no database."""

import datetime

import pytest

from labfeed import hl7v2
from labfeed.tests.factories import MESSAGES, obx, oru, potassium

NOW = datetime.datetime(2026, 1, 15, 10, 0, tzinfo=datetime.UTC)


def test_a_v251_message_gives_its_patients_and_results_in_order():
    text = hl7v2.split_messages((MESSAGES / "two_patients_v251.hl7").read_text())[0]

    message = hl7v2.oru_read(text)

    assert message.header.control_id == "FILE-251-1"
    assert message.header.version == "2.5.1"
    assert message.header.message_type == "ORU^R01"
    first, second = message.groups
    assert first.patient.identifiers[0].value == "RV1001"
    assert "RIVERSIDE" in first.patient.identifiers[0].authority
    assert first.patient.birth_date == datetime.date(1980, 5, 17)
    assert [r.code for r in first.results] == ["2823-3", "2951-2"]
    utc = datetime.UTC
    # OBR-7, the specimen time, wins over OBX-14 (the time of the analysis)
    assert first.results[0].specimen_at == datetime.datetime(2026, 1, 15, 8, 30, tzinfo=utc)
    assert second.patient.family_name == "Roe"
    assert [r.value_type for r in second.results] == ["NM", "ST"]


def test_a_v23_message_is_read_too():
    message = hl7v2.oru_read(oru(potassium(), version="2.3"))

    assert message.header.version == "2.3"
    assert message.groups[0].results[0].value == "4.2"


def test_a_file_with_line_feeds_splits_into_its_messages():
    messages = hl7v2.split_messages((MESSAGES / "correction_v23.hl7").read_text())

    assert len(messages) == 2
    assert all(m.startswith("MSH|") and "\n" not in m for m in messages)
    assert [hl7v2.header_read(m).control_id for m in messages] == ["FILE-23-1", "FILE-23-2"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("PID|1||X", "does not start with an MSH segment"),
        (oru(potassium()).replace("|||F", "|||"), "no result status (OBX-11): the message may have been cut"),
        (oru(potassium())[:-40], "no result status"),
        (oru(), "has no OBX results"),
        (
            "MSH|^~\\&|LIS|CENTRAL LAB|||20260115||ORU^R01|M1|P|2.5.1\rOBX|1|NM|2823-3^K^LN||4|mmol/L||||||F",
            "comes before any PID",
        ),
        (oru(potassium()) + "obx|2|garbage", "no valid segment name"),
    ],
)
def test_a_malformed_or_truncated_message_is_rejected_with_the_reason(text, reason):
    with pytest.raises(hl7v2.Refusal) as refusal:
        hl7v2.oru_read(text)

    assert refusal.value.ack == "AR"
    assert reason in refusal.value.text


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"message_type": "ADT^A01"}, "Message type ADT^A01 is not accepted"),
        ({"message_type": "ORU^R30"}, "Event ORU^R30 is not accepted"),
        ({"version": "2.6"}, "HL7 version 2.6 is not accepted"),
        ({"processing": "T"}, "production results only"),
        ({"control_id": ""}, "MSH-10"),
    ],
)
def test_messages_this_interface_does_not_take_are_rejected(changes, reason):
    with pytest.raises(hl7v2.Refusal) as refusal:
        hl7v2.oru_read(oru(potassium(), **changes))

    assert refusal.value.ack == "AR"
    assert reason in refusal.value.text


@pytest.mark.parametrize(
    ("value_type", "value", "number"),
    [("NM", "4.2", 4.2), ("SN", "^4.2", 4.2), ("SN", "=^4.2", 4.2), ("SN", "<^0.1", None), ("SN", "^1^-^3", None),
     ("ST", "4.2", None), ("NM", "high", None), ("NM", "nan", None)],
)  # fmt: skip
def test_only_plain_numbers_are_numeric(value_type, value, number):
    result = hl7v2.oru_read(oru(obx(1, "2823-3", value, "mmol/L", value_type=value_type))).groups[0].results[0]

    assert hl7v2.numeric_value(result) == number


def test_times_with_an_offset_are_aware_and_without_one_naive():
    assert hl7v2.timestamp_read("202601150830+0100", "OBR-7") == datetime.datetime(
        2026, 1, 15, 8, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=1))
    )
    assert hl7v2.timestamp_read("20260115", "OBR-7") == datetime.datetime(2026, 1, 15)  # noqa: DTZ001
    with pytest.raises(hl7v2.Refusal, match="not a real date"):
        hl7v2.timestamp_read("20260231", "OBR-7")
    with pytest.raises(hl7v2.Refusal, match="YYYYMMDD"):
        hl7v2.timestamp_read("2026-01-15", "OBR-7")


def test_an_ack_answers_the_sender_with_its_control_id_and_the_reason_escaped():
    header = hl7v2.header_read(oru(potassium(), control_id="ABC-1"))

    ack = hl7v2.ack_build(header=header, code="AE", control_id="ACK1", text="Potassium in mg|dL^? no",
                          error_code=hl7v2.DATA_TYPE_ERROR, location="OBX 1", now=NOW)  # fmt: skip

    msh, msa, err = ack.rstrip("\r").split("\r")
    assert msh.split("|")[4:6] == ["LIS", "CENTRAL LAB"]  # the receiving application and facility: the sender
    assert msh.split("|")[8] == "ACK^R01^ACK"
    assert msa.split("|")[:3] == ["MSA", "AE", "ABC-1"]
    assert "mg\\F\\dL\\S\\?" in msa
    assert err.split("|")[3] == "102^Data type error^HL70357"
    assert hl7v2.ack_code_of(ack) == "AE"


def test_an_ack_before_v25_carries_its_error_in_err_1():
    header = hl7v2.header_read(oru(potassium(), version="2.3"))

    ack = hl7v2.ack_build(header=header, code="AR", control_id="A", text="Unknown", error_code="204", now=NOW)

    assert ack.split("\r")[2] == "ERR|^^^204&Unknown"


def test_an_ack_is_built_even_without_a_readable_header():
    ack = hl7v2.ack_build(header=None, code="AR", control_id="A", text="Not HL7", now=NOW)

    assert hl7v2.ack_code_of(ack) == "AR"
    assert ack.startswith("MSH|^~\\&|")


def test_the_mllp_reader_finds_messages_split_across_reads_and_drops_bytes_outside_blocks():
    stream = b"noise" + hl7v2.frame("MSH|first") + hl7v2.frame("MSH|second")
    reader = hl7v2.MllpReader()

    found = [m for i in range(0, len(stream), 7) for m in reader.feed(stream[i : i + 7])]

    assert found == [b"MSH|first", b"MSH|second"]


def test_a_block_that_never_ends_is_cut_off():
    reader = hl7v2.MllpReader(max_bytes=100)

    with pytest.raises(hl7v2.FramingError):
        reader.feed(hl7v2.START_BLOCK + b"x" * 200)
