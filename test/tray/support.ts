/**
 * Test support for the tray: a private session dbus-daemon, a minimal StatusNotifierWatcher
 * (dbus-next), gdbus calls as a desktop shell makes them, and a parser for gdbus's GVariant text.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Message, interface as dbusInterface, sessionBus, type MessageBus } from 'dbus-next';
import { privateBusConfig } from '../support/private-bus.js';

export function hasCommand(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

export interface DbusDaemon {
  address: string;
  process: ChildProcess;
  /** Kills the daemon (every connection to it is lost). */
  kill(): Promise<void>;
  /** A fresh daemon listening on the same socket path. */
  restart(): Promise<DbusDaemon>;
  cleanup(): void;
}

export async function startDbusDaemon(dir = mkdtempSync(join(tmpdir(), 'keytap-dbus-'))): Promise<DbusDaemon> {
  const listen = `unix:path=${join(dir, 'bus')}`;
  // No service folders (private-bus.ts): GTK's calls to dconf and the like fail at once instead of
  // starting the machine's services on this bus, which slowed the host's start on a loaded machine.
  const child = spawn('dbus-daemon', ['--config-file', privateBusConfig(dir, listen), '--print-address', '--nofork'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const address = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (line) => resolve(line.trim()));
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`dbus-daemon exited with ${code}`)));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const daemon: DbusDaemon = {
    address,
    process: child,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    async restart() {
      await daemon.kill();
      return startDbusDaemon(dir);
    },
    cleanup() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return daemon;
}

export async function connect(address: string): Promise<MessageBus> {
  const bus = sessionBus({ busAddress: address });
  bus.on('error', () => undefined);
  await new Promise<void>((resolve) => bus.once('connect', () => resolve()));
  return bus;
}

/** The parts of org.kde.StatusNotifierWatcher an item uses. */
class WatcherInterface extends dbusInterface.Interface {
  readonly items: string[] = [];
  constructor(private readonly onRegister: (service: string) => void) {
    super('org.kde.StatusNotifierWatcher');
  }
  RegisterStatusNotifierItem(service: string): void {
    this.items.push(service);
    this.onRegister(service);
  }
  RegisterStatusNotifierHost(_service: string): void {}
  get RegisteredStatusNotifierItems(): string[] {
    return this.items;
  }
  get IsStatusNotifierHostRegistered(): boolean {
    return true;
  }
  get ProtocolVersion(): number {
    return 0;
  }
}
WatcherInterface.configureMembers({
  methods: { RegisterStatusNotifierItem: { inSignature: 's' }, RegisterStatusNotifierHost: { inSignature: 's' } },
  properties: {
    RegisteredStatusNotifierItems: { signature: 'as', access: 'read' },
    IsStatusNotifierHostRegistered: { signature: 'b', access: 'read' },
    ProtocolVersion: { signature: 'i', access: 'read' },
  },
});

export interface TestWatcher {
  registered: string[];
  nextRegistration(): Promise<string>;
  stop(): void;
}

export async function startWatcher(address: string): Promise<TestWatcher> {
  const bus = await connect(address);
  const waiters: Array<(service: string) => void> = [];
  const iface = new WatcherInterface((service) => waiters.splice(0).forEach((w) => w(service)));
  bus.export('/StatusNotifierWatcher', iface);
  await bus.requestName('org.kde.StatusNotifierWatcher', 4);
  return {
    registered: iface.items,
    nextRegistration: () => new Promise((resolve) => waiters.push(resolve)),
    stop: () => bus.disconnect(),
  };
}

/** Collects signals on `iface` from anyone, for assertions. */
export async function listenSignals(address: string, iface: string): Promise<{ signals: Message[]; next(member: string): Promise<Message>; stop(): void }> {
  const bus = await connect(address);
  await bus.call(new Message({ destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus', member: 'AddMatch', signature: 's', body: [`type='signal',interface='${iface}'`] }));
  const signals: Message[] = [];
  const waiters: Array<[string, (m: Message) => void]> = [];
  bus.on('message', (message: Message) => {
    if (message.interface !== iface) return;
    signals.push(message);
    for (const [i, [member, resolve]] of [...waiters.entries()].reverse()) {
      if (member === message.member) {
        waiters.splice(i, 1);
        resolve(message);
      }
    }
  });
  return {
    signals,
    next: (member) => new Promise((resolve) => waiters.push([member, resolve])),
    stop: () => bus.disconnect(),
  };
}

/** `gdbus call --session --dest … --object-path … --method …` and its output, parsed. */
export function gdbusCall(address: string, dest: string, path: string, method: string, ...args: string[]): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    execFile('gdbus', ['call', '--session', '--dest', dest, '--object-path', path, '--method', method, '--', ...args], { env: { ...process.env, DBUS_SESSION_BUS_ADDRESS: address } }, (error, stdout, stderr) => {
      if (error) reject(new Error(`gdbus ${method}: ${stderr || error.message}`));
      else resolve(parseGVariant(stdout.trim()) as unknown[]);
    });
  });
}

export async function waitFor<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * GVariant text format as gdbus prints it: tuples (…) → arrays, arrays […] → arrays, dicts {k: v}
 * → objects, <v> → { variant: v }, 'str', numbers with optional type words (uint32 3), true/false,
 * objectpath '/x', byte 0x01, @type annotations (skipped).
 */
export function parseGVariant(text: string): unknown {
  let i = 0;
  const ws = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  const value = (): unknown => {
    ws();
    const c = text[i];
    if (c === '@') {
      // "@a{sv} {}": a type annotation, then the value.
      while (i < text.length && !/\s/.test(text[i]!)) i++;
      return value();
    }
    if (c === '(' || c === '[') {
      const close = c === '(' ? ')' : ']';
      i++;
      const out: unknown[] = [];
      ws();
      while (text[i] !== close) {
        out.push(value());
        ws();
        if (text[i] === ',') i++;
        ws();
      }
      i++;
      return out;
    }
    if (c === '{') {
      i++;
      const out: Record<string, unknown> = {};
      ws();
      while (text[i] !== '}') {
        const key = value();
        ws();
        if (text[i] !== ':') throw new Error(`expected ':' at ${i} in ${text}`);
        i++;
        out[String(key)] = value();
        ws();
        if (text[i] === ',') i++;
        ws();
      }
      i++;
      return out;
    }
    if (c === '<') {
      i++;
      const inner = value();
      ws();
      i++; // '>'
      return { variant: inner };
    }
    if (c === "'" || c === '"') {
      const quote = c;
      i++;
      let s = '';
      while (text[i] !== quote) {
        if (text[i] === '\\') i++;
        s += text[i++];
      }
      i++;
      return s;
    }
    const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i))?.[0];
    if (word === 'true' || word === 'false') {
      i += word.length;
      return word === 'true';
    }
    if (word && ['byte', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'handle', 'double', 'objectpath', 'signature'].includes(word)) {
      i += word.length;
      return value();
    }
    const num = /^-?(0x[0-9a-fA-F]+|[0-9.]+(e-?[0-9]+)?)/.exec(text.slice(i))?.[0];
    if (num) {
      i += num.length;
      return Number(num);
    }
    throw new Error(`cannot parse GVariant at ${i}: ${text.slice(i, i + 40)}`);
  };
  return value();
}

export interface MenuTree {
  id: number;
  props: Record<string, unknown>;
  children: MenuTree[];
}

/** GetLayout's (ia{sv}av) as gdbus prints it → a tree with plain property values. */
export function toMenuTree(layout: unknown): MenuTree {
  const [id, props, children] = layout as [number, Record<string, { variant: unknown }>, Array<{ variant: unknown }>];
  return {
    id,
    props: Object.fromEntries(Object.entries(props).map(([k, v]) => [k, v.variant])),
    children: children.map((child) => toMenuTree(child.variant)),
  };
}

/** The first item labelled `label` in the tree, depth first. */
export function findMenuItem(tree: MenuTree, label: string): MenuTree | undefined {
  if (tree.props.label === label) return tree;
  for (const child of tree.children) {
    const found = findMenuItem(child, label);
    if (found) return found;
  }
  return undefined;
}
