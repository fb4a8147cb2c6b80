import type { Command } from 'commander';
import { Option } from 'commander';
import type { KeyDescriptor } from '../../device/discovery/enumerate.js';
import { interfaceNameOf } from '../../device/discovery/interfaces.js';
import { openFeitianSession, readKeySerial } from '../../device/open.js';
import { connectedKeys } from '../key-options.js';
import type { CliIo } from '../output.js';
import { printJson } from '../output.js';

/** What `keys` tells of one key: its serial, and for a Feitian HOTP key whether it holds a token. */
interface KeyState {
  serial: string | undefined;
  /** Feitian HOTP keys only; undefined when the key could not be asked. */
  programmed?: boolean | undefined;
}

/**
 * A Feitian HOTP key has no serial of its own: the one shown is its token's, which CHECK reads
 * (docs/protocols.md §4.3). A key that cannot be asked now (another program holds it) is listed
 * without: listing keys must not fail for that.
 */
async function readKeyState(key: KeyDescriptor): Promise<KeyState> {
  if (key.dialect !== 'feitian') return { serial: await readKeySerial(key) };
  try {
    const opened = await openFeitianSession(key);
    try {
      return { serial: opened.session.serial, programmed: opened.session.programmed };
    } finally {
      await opened.close().catch(() => undefined);
    }
  } catch {
    return { serial: undefined, programmed: undefined };
  }
}

/** Where an OATH key's line ends after its serial, a Feitian key's says what it is and holds (its serial being its token's). */
function describeHotpState(state: KeyState): string {
  if (state.programmed === undefined) return '  Feitian HOTP key, state unknown (it did not answer; another program may be using it)';
  return state.programmed ? "  Feitian HOTP key, programmed (the serial is its token's)" : '  Feitian HOTP key, erased (it holds no token)';
}

/** 'hid /dev/hidraw3, ccid in reader "Nitrokey Nitrokey 3 00 00"', in the order keytap tries them. */
function interfacesOf(key: KeyDescriptor): string {
  return key.interfaces
    .map((face) => (face.kind === 'pcsc' ? `ccid in reader "${face.path}"` : face.kind === 'virtual' ? `hid via socket ${face.path}` : `hid ${face.path}`))
    .join(', ');
}

export function registerKeys(program: Command, io: CliIo): void {
  program
    .command('keys')
    .description('list the connected keys (real ones, and virtual keys started with "keytap virtual start"), one line per key with the interfaces it is reached over')
    .addOption(
      new Option('--json', 'print a JSON array of {id, kind, name, path, serial, interfaces: [{interface, kind, id, path}]}, with dialect and programmed for a Feitian HOTP key'),
    )
    .action(async (options: { json?: boolean }) => {
      const keys = await connectedKeys(io);
      // One key at a time: a card reader answers one program at a time anyway.
      const states: KeyState[] = [];
      for (const key of keys) states.push(await readKeyState(key));
      if (options.json) {
        printJson(
          io,
          keys.map((k, i) => ({
            id: k.id,
            kind: k.kind,
            name: k.name,
            path: k.path,
            serial: states[i]!.serial ?? null,
            interfaces: k.interfaces.map((face) => ({ interface: interfaceNameOf(face), kind: face.kind, id: face.id, path: face.path })),
            ...(k.dialect === 'feitian' ? { dialect: k.dialect, programmed: states[i]!.programmed ?? null } : {}),
          })),
        );
        return;
      }
      if (keys.length === 0) io.out('No key found.');
      keys.forEach((k, i) => {
        const state = states[i]!;
        const hotp = k.dialect === 'feitian' ? describeHotpState(state) : '';
        io.out(`${k.id}  ${k.name}${state.serial === undefined ? '' : `  serial ${state.serial}`}${hotp}  (${interfacesOf(k)})`);
      });
    });
}
