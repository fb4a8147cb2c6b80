#!/usr/bin/python3
"""Peer test: yubikit (python3-ykman 4.0.9) OathSession against keytap's virtual key.

Usage: /usr/bin/python3 test/peers/ykman_oath.py SOCKET_PATH

yubikit talks to a SmartCardConnection; here that connection carries each APDU in CTAPHID vendor
command 0x70 (the Nitrokey 3 way, which keytap's virtual key speaks in both dialects) and turns
the SW-first answer back into (data, sw). Every code the key returns is checked against an
independent RFC 4226/6238 computation with Python's hmac. Exits non-zero on the first mismatch.
"""
import hashlib
import hmac
import os
import struct
import sys
from base64 import b32encode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from virtual_hid import open_virtual_ctaphid  # noqa: E402  (the other helper's harness)
from yubikit.core import TRANSPORT  # noqa: E402
from yubikit.core.smartcard import ApduError, SmartCardConnection  # noqa: E402
from yubikit.oath import (  # noqa: E402
    HASH_ALGORITHM,
    OATH_TYPE,
    CredentialData,
    OathSession,
)

VENDOR_SECRETS = 0x70
RFC_SECRET = b"12345678901234567890"
SHA256_SECRET = b"12345678901234567890123456789012"
SHA512_SECRET = b"1234567890" * 6 + b"1234"


class CtapHidSmartCardConnection(SmartCardConnection):
    """What yubikit needs of a connection: transport, send_and_receive, close."""

    def __init__(self, device):
        self.device = device
        self.log = []

    @property
    def transport(self):
        return TRANSPORT.USB

    def send_and_receive(self, apdu):
        response = bytes(self.device.call(VENDOR_SECRETS, bytes(apdu)))
        if len(response) < 2:
            raise AssertionError("0x70 answer shorter than a status word: %s" % response.hex())
        sw = (response[0] << 8) | response[1]
        self.log.append((bytes(apdu).hex(), response.hex()))
        return response[2:], sw

    def close(self):
        close = getattr(self.device, "close", None)
        if close:
            close()


def expected_code(secret, counter, digits, algorithm):
    mac = hmac.new(secret, struct.pack(">Q", counter), algorithm).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).rjust(digits, "0")


def check(condition, message):
    if not condition:
        raise AssertionError(message)
    print("ok -", message)


def b32(secret):
    return b32encode(secret).decode().rstrip("=")


def main(socket_path):
    connection = CtapHidSmartCardConnection(open_virtual_ctaphid(socket_path))
    session = OathSession(connection)
    check(tuple(session.version) == (5, 4, 3), "SELECT reports version 5.4.3 (got %s)" % (session.version,))
    session.reset()
    session = OathSession(connection)
    check(not session.locked, "fresh key after RESET is not locked")
    check(session.list_credentials() == [], "no credentials after RESET")

    now = 1_700_000_000
    creds = {
        "sha1": (CredentialData("alice@example.com", OATH_TYPE.TOTP, HASH_ALGORITHM.SHA1, RFC_SECRET, 6, 30, 0, "Demo"), False),
        "sha256": (CredentialData("alice", OATH_TYPE.TOTP, HASH_ALGORITHM.SHA256, SHA256_SECRET, 8, 30, 0, "SHA256"), False),
        "sha512": (CredentialData("alice", OATH_TYPE.TOTP, HASH_ALGORITHM.SHA512, SHA512_SECRET, 6, 30, 0, "SHA512"), False),
        "p60": (CredentialData("alice", OATH_TYPE.TOTP, HASH_ALGORITHM.SHA1, RFC_SECRET, 8, 60, 0, "Bank"), False),
        "touch": (CredentialData("alice", OATH_TYPE.TOTP, HASH_ALGORITHM.SHA256, SHA256_SECRET, 6, 30, 0, "GitHub"), True),
        "hotp": (CredentialData("alice", OATH_TYPE.HOTP, HASH_ALGORITHM.SHA1, RFC_SECRET, 6, 30, 0, "VPN"), False),
        "hotp5": (CredentialData("bob", OATH_TYPE.HOTP, HASH_ALGORITHM.SHA1, RFC_SECRET, 6, 30, 5, "VPN"), False),
    }
    # Also through the URI parser, as `ykman oath accounts uri` would.
    uri = CredentialData.parse_uri("otpauth://totp/Uri:carol?secret=%s&issuer=Uri" % b32(RFC_SECRET))
    creds["uri"] = (uri, False)

    for _name, (data, touch) in creds.items():
        session.put_credential(data, touch_required=touch)
    check(True, "PUT of TOTP SHA1/SHA256/SHA512, 60 s period, touch, HOTP (with and without IMF)")

    listed = {c.id: c for c in session.list_credentials()}
    wanted = {data.get_id() for data, _ in creds.values()}
    check(set(listed) == wanted, "LIST shows exactly the credentials put (%d)" % len(wanted))
    check(listed[b"60/Bank:alice"].period == 60, "the 60 s period survives in the id prefix")
    check(listed[b"VPN:alice"].oath_type == OATH_TYPE.HOTP, "LIST reports HOTP as HOTP")

    secrets = {data.get_id(): data for data, _ in creds.values()}
    codes = session.calculate_all(now)
    check({c.id for c in codes} == wanted, "CALCULATE ALL answers for every credential (%d)" % len(wanted))
    for cred, code in codes.items():
        data = secrets[cred.id]
        if data.oath_type == OATH_TYPE.HOTP:
            check(code is None, "CALCULATE ALL leaves HOTP %s uncomputed (77)" % cred.id.decode())
        elif cred.touch_required:
            check(code is None, "CALCULATE ALL leaves touch credential %s uncomputed (7C)" % cred.id.decode())
        else:
            want = expected_code(data.secret, now // data.period, data.digits, data.hash_algorithm.name.lower())
            check(code is not None and code.value == want, "CALCULATE ALL code of %s = %s" % (cred.id.decode(), want))
            check(code.valid_from == now // data.period * data.period, "validity window of %s" % cred.id.decode())

    touch_cred = listed[b"GitHub:alice"]
    code = session.calculate_code(touch_cred, now)
    check(code.value == expected_code(SHA256_SECRET, now // 30, 6, "sha256"), "CALCULATE of the touch credential after the (auto) touch")

    hotp = listed[b"VPN:alice"]
    for counter in (0, 1, 2):
        got = session.calculate_code(hotp, now).value
        check(got == expected_code(RFC_SECRET, counter, 6, "sha1"), "HOTP counter %d = %s" % (counter, got))
    got = session.calculate_code(listed[b"VPN:bob"], now).value
    check(got == expected_code(RFC_SECRET, 5, 6, "sha1"), "HOTP with IMF 5 starts at counter 5")

    challenge = struct.pack(">q", now // 30)
    full = session.calculate(b"SHA512:alice", challenge)
    check(full == hmac.new(SHA512_SECRET, challenge, "sha512").digest(), "CALCULATE P2=0 returns the full SHA512 HMAC")

    new_id = session.rename_credential(b"Uri:carol", "carol2", "Uri2")
    check(new_id == b"Uri2:carol2", "RENAME (5.3.1+) to Uri2:carol2")
    session.delete_credential(b"SHA256:alice")
    ids = {c.id for c in session.list_credentials()}
    check(b"SHA256:alice" not in ids and b"Uri2:carol2" in ids, "DELETE removed SHA256:alice")
    try:
        session.delete_credential(b"SHA256:alice")
        check(False, "DELETE of a missing credential fails")
    except ApduError as e:
        check(e.sw == 0x6984, "DELETE of a missing credential: 6984")

    # Password: set, re-select (locked), wrong password refused, right password accepted.
    key = session.derive_key("correct horse")
    session.set_key(key)
    session = OathSession(connection)
    check(session.locked and session.has_key, "re-SELECT with a password set is locked")
    try:
        session.list_credentials()
        check(False, "LIST while locked fails")
    except ApduError as e:
        check(e.sw == 0x6982, "LIST while locked: 6982")
    try:
        session.validate(session.derive_key("wrong"))
        check(False, "a wrong password is refused")
    except ApduError as e:
        check(e.sw == 0x6A80, "a wrong password is refused with 6A80")
    session = OathSession(connection)
    session.validate(session.derive_key("correct horse"))
    check(not session.locked, "VALIDATE with the right password unlocks (and the key's answer verified)")
    check(len(session.list_credentials()) == len(wanted) - 1, "LIST works after VALIDATE")
    session.unset_key()
    session = OathSession(connection)
    check(not session.locked, "password removed")

    device_id = session.device_id
    session.reset()
    session = OathSession(connection)
    check(session.list_credentials() == [] and not session.locked, "RESET wipes credentials")
    check(session.device_id != device_id, "RESET makes a new salt (new device id)")
    connection.close()
    print("all ykman OATH checks passed")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1])
