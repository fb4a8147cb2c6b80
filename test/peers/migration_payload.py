"""Builds a Google Authenticator export payload (MigrationPayload) with Google's own protobuf
runtime (Debian's python3-protobuf), from a schema written here from the published .proto
(docs/seed-formats.md §4.4), independently of keytap's parser.

stdin: JSON {"version", "batch_size", "batch_index", "batch_id", "otp_parameters": [{"secret_hex",
"name", "issuer", "algorithm", "digits", "type", "counter"}]}; stdout: the payload in Base64.
"""
import base64
import json
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto
file = descriptor_pb2.FileDescriptorProto(name="google_auth_migration.proto", package="ga", syntax="proto3")
payload = file.message_type.add(name="MigrationPayload")
for name, number, enum_values in [
    ("Algorithm", None, ["ALGORITHM_UNSPECIFIED", "ALGORITHM_SHA1", "ALGORITHM_SHA256", "ALGORITHM_SHA512", "ALGORITHM_MD5"]),
    ("DigitCount", None, ["DIGIT_COUNT_UNSPECIFIED", "DIGIT_COUNT_SIX", "DIGIT_COUNT_EIGHT"]),
    ("OtpType", None, ["OTP_TYPE_UNSPECIFIED", "OTP_TYPE_HOTP", "OTP_TYPE_TOTP"]),
]:
    enum = payload.enum_type.add(name=name)
    for i, value in enumerate(enum_values):
        enum.value.add(name=value, number=i)
params = payload.nested_type.add(name="OtpParameters")
for name, number, kind, type_name in [
    ("secret", 1, F.TYPE_BYTES, None),
    ("name", 2, F.TYPE_STRING, None),
    ("issuer", 3, F.TYPE_STRING, None),
    ("algorithm", 4, F.TYPE_ENUM, ".ga.MigrationPayload.Algorithm"),
    ("digits", 5, F.TYPE_ENUM, ".ga.MigrationPayload.DigitCount"),
    ("type", 6, F.TYPE_ENUM, ".ga.MigrationPayload.OtpType"),
    ("counter", 7, F.TYPE_INT64, None),
]:
    field = params.field.add(name=name, number=number, type=kind, label=F.LABEL_OPTIONAL)
    if type_name:
        field.type_name = type_name
payload.field.add(name="otp_parameters", number=1, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED, type_name=".ga.MigrationPayload.OtpParameters")
for name, number in [("version", 2), ("batch_size", 3), ("batch_index", 4), ("batch_id", 5)]:
    payload.field.add(name=name, number=number, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)

pool = descriptor_pool.DescriptorPool()
pool.Add(file)
Payload = message_factory.MessageFactory(pool).GetPrototype(pool.FindMessageTypeByName("ga.MigrationPayload"))

spec = json.load(sys.stdin)
message = Payload(version=spec.get("version", 1), batch_size=spec.get("batch_size", 1), batch_index=spec.get("batch_index", 0), batch_id=spec.get("batch_id", 0))
for entry in spec["otp_parameters"]:
    p = message.otp_parameters.add()
    p.secret = bytes.fromhex(entry["secret_hex"])
    p.name = entry.get("name", "")
    p.issuer = entry.get("issuer", "")
    # Enum values as numbers: proto3 enums are open, so a value the schema does not name is kept.
    p.algorithm = entry.get("algorithm", 1)
    p.digits = entry.get("digits", 1)
    p.type = entry.get("type", 2)
    p.counter = entry.get("counter", 0)
sys.stdout.write(base64.b64encode(message.SerializeToString()).decode("ascii"))
