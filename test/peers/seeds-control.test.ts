// Why the PSKC reader checks text fields for control characters itself: a C1 control such as
// U+009B (CSI, the 8-bit ESC [) is a legal XML character, so xmllint finds the file well-formed
// and valid against libpskc's schema, and python-pskc hands the serial over as it is. keytap
// refuses it, naming the KeyPackage and the character.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pskcFormat } from '../../src/seeds/index.js';

const PYTHON = '/usr/bin/python3';
const PEER = join(import.meta.dirname, 'pskc_peer.py');
const SCHEMA = '/usr/share/xml/pskc/pskc-schema.xsd';
const CATALOG = '/usr/share/xml/pskc/catalog-pskc.xml';
const dir = mkdtempSync(join(tmpdir(), 'keytap-pskc-control-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a C1 control character in a PSKC serial', () => {
  it('xmllint and python-pskc take it; keytap refuses it with the place', () => {
    const token = { serial: 'SERIALX1', secret: Buffer.from('12345678901234567890'), type: 'TOTP' as const, algorithm: 'SHA1' as const, digits: 6, period: 30, counter: 0 };
    const text = pskcFormat.write([token]).toString('utf8').replace('>SERIALX1<', '>SERIALX1\u009b2J<');
    const file = join(dir, 'csi.pskcxml');
    writeFileSync(file, text);
    const lint = spawnSync('xmllint', ['--noout', '--schema', SCHEMA, file], { encoding: 'utf8', env: { ...process.env, XML_CATALOG_FILES: CATALOG } });
    expect(lint.status, lint.stderr).toBe(0);
    const peer = (JSON.parse(execFileSync(PYTHON, [PEER, 'read', file], { encoding: 'utf8', cwd: dir })) as { keys: { serial: string }[] }).keys;
    expect(peer[0]!.serial).toBe('SERIALX1\u009b2J');
    expect(() => pskcFormat.read(Buffer.from(text))).toThrow(/KeyPackage \(line \d+\): the serial number contains a control character \(U\+009B\)/u);
  });
});
