/**
 * A connection to a Linux abstract Unix socket (a name, not a file: what `dbus-daemon` listens on for
 * `unix:tmpdir=` and `dbus-run-session` sessions), without a native addon of keytap's own.
 *
 * Node's `net.createConnection('\0name')` is the way where libuv is 1.48 or newer (Node 22 on). Older
 * libuv (Node 20 ships 1.46) connects with the whole NUL-padded sun_path as the address
 * (addrlen = sizeof(struct sockaddr_un)), which reaches only sockets bound the same padded way, not
 * dbus-daemon's, bound with the name's own length; libuv fixed it in 1.48 (PR #4266, "linux: fix
 * bind/connect for abstract sockets"). There the socket is made with libc's socket() and connect()
 * through koffi (already keytap's FFI for PC/SC) and handed to Node as a connected descriptor.
 */
import net from 'node:net';
import type { Socket } from 'node:net';
import { endianness } from 'node:os';
import { importKoffi } from './koffi.js';

const AF_UNIX = 1;
const SOCK_STREAM = 1;
/** Linux's SOCK_CLOEXEC (O_CLOEXEC): a spawned child must not inherit the bus connection. */
const SOCK_CLOEXEC = 0o2000000;
const ERRNO_NAMES: Record<number, string> = { 2: 'ENOENT', 13: 'EACCES', 11: 'EAGAIN', 111: 'ECONNREFUSED' };

/** libuv 1.48 connects to abstract names with their own length. */
export function libuvConnectsAbstractNames(uv: string = process.versions.uv ?? '0.0.0'): boolean {
  const [major = 0, minor = 0] = uv.split('.').map(Number);
  return major > 1 || (major === 1 && minor >= 48);
}

interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  connect(fd: number, address: Buffer, length: number): number;
  close(fd: number): number;
  errno(): number;
}

let libc: Libc | undefined;

async function loadLibc(): Promise<Libc> {
  if (libc) return libc;
  type Koffi = { load(path: null): { func(signature: string): (...args: unknown[]) => number }; errno(): number };
  const koffi = await importKoffi<Koffi>();
  // The process's own symbols: libc is already loaded (glibc or musl alike).
  const self = koffi.load(null);
  const socket = self.func('int socket(int domain, int type, int protocol)');
  const connect = self.func('int connect(int fd, const void *addr, uint32_t len)');
  const close = self.func('int close(int fd)');
  libc = { socket: (d, t, p) => socket(d, t, p), connect: (fd, a, l) => connect(fd, a, l), close: (fd) => close(fd), errno: () => koffi.errno() };
  return libc;
}

/** Connects to the abstract socket `name` (without its leading NUL). */
export async function connectAbstractSocket(name: string): Promise<Socket> {
  if (libuvConnectsAbstractNames()) return net.createConnection(`\u0000${name}`);
  const c = await loadLibc();
  const bytes = Buffer.from(name, 'utf8');
  // struct sockaddr_un: sa_family_t (unsigned short, host order), then sun_path: NUL + name.
  const address = Buffer.alloc(2 + 1 + bytes.length);
  if (endianness() === 'LE') address.writeUInt16LE(AF_UNIX, 0);
  else address.writeUInt16BE(AF_UNIX, 0);
  bytes.copy(address, 3);
  if (address.length > 2 + 108) throw new Error(`the abstract socket name "${name}" is too long`);
  const fd = c.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new Error(`socket() failed (${errnoName(c.errno())})`);
  // A local connect() does not block: it is accepted into the backlog or refused at once.
  if (c.connect(fd, address, address.length) !== 0) {
    const errno = c.errno();
    c.close(fd);
    throw new Error(`connect ${errnoName(errno)} @${name}`);
  }
  // Node makes the descriptor non-blocking and owns (and closes) it from here on.
  return new net.Socket({ fd, readable: true, writable: true });
}

function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
}
