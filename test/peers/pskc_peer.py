"""Peer for the PSKC tests: python-pskc (Debian python3-pskc) reads or writes a PSKC file.

read FILE [--passphrase P | --key HEX]  -> JSON list of keys on stdout
write FILE SPEC_JSON                     -> writes FILE with python-pskc (SPEC: keys, protection)

Run with /usr/bin/python3 (Debian's, which has the pskc module). Test data only: it prints the
secrets in hex because the test compares them.
"""
import json
import sys

from pskc import PSKC


def read(path, args):
    pskc = PSKC(path)
    if '--passphrase' in args:
        pskc.encryption.derive_key(args[args.index('--passphrase') + 1])
    if '--key' in args:
        pskc.encryption.key = bytes.fromhex(args[args.index('--key') + 1])
    keys = []
    for key in pskc.keys:
        keys.append({
            'id': key.id,
            'serial': key.serial,
            'algorithm': key.algorithm,
            'suite': key.algorithm_suite,
            'secret': key.secret.hex() if key.secret is not None else None,
            'counter': key.counter,
            'time_offset': key.time_offset,
            'time_interval': key.time_interval,
            'response_length': key.response_length,
            'response_encoding': key.response_encoding,
            'issuer': key.issuer,
            'friendly_name': key.friendly_name,
            'key_userid': key.key_userid,
            'manufacturer': key.manufacturer,
            'model': key.model,
            'check': key.check(),
        })
    json.dump({'version': pskc.version, 'keys': keys}, sys.stdout)


def write(path, spec):
    """SPEC keys may also name issuer, friendly_name, key_userid, and a device: keys with the same
    device go into one KeyPackage (python-pskc's Device.add_key)."""
    pskc = PSKC()
    devices = {}
    for k in spec['keys']:
        fields = dict(
            id=k.get('id', k['serial']), secret=bytes.fromhex(k['secret']),
            algorithm=k['algorithm'], response_length=k['digits'], response_encoding='DECIMAL',
            issuer=k.get('issuer'), friendly_name=k.get('friendly_name'), key_userid=k.get('key_userid'))
        if k.get('suite'):
            fields['algorithm_suite'] = k['suite']
        if k['algorithm'].endswith('hotp'):
            fields['counter'] = k['counter']
        else:
            fields['time_offset'] = 0
            fields['time_interval'] = k['period']
        fields = {n: v for n, v in fields.items() if v is not None}
        if 'device' in k:
            if k['device'] not in devices:
                devices[k['device']] = pskc.add_device(serial=k['serial'], manufacturer=k.get('manufacturer'))
            devices[k['device']].add_key(**fields)
        else:
            pskc.add_key(serial=k['serial'], **{n: v for n, v in dict(fields, manufacturer=k.get('manufacturer')).items() if v is not None})
    protection = spec.get('protection', {})
    extra = {'fields': protection['fields']} if 'fields' in protection else {}
    if protection.get('kind') == 'psk':
        pskc.encryption.setup_preshared_key(key=bytes.fromhex(protection['key']), algorithm=protection.get('algorithm', 'aes128-cbc'), **extra)
    elif protection.get('kind') == 'passphrase':
        pskc.encryption.setup_pbkdf2(protection['passphrase'], iterations=protection.get('iterations', 1000), **extra)
    pskc.write(path)


if __name__ == '__main__':
    if sys.argv[1] == 'read':
        read(sys.argv[2], sys.argv[3:])
    else:
        write(sys.argv[2], json.loads(sys.argv[3]))
