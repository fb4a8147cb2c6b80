/**
 * A Unix stream socket that receives file descriptors, through libc (koffi). Node's net module
 * reads sockets with read(), which drops the SCM_RIGHTS control messages a Wayland compositor
 * sends its file descriptors in (the data-control source's `send` event carries the pipe to write
 * the copied text to), so the Wayland client needs recvmsg itself.
 *
 * The socket is non-blocking; waiting for it to become readable is poll() run with koffi's async
 * call, on a libuv worker thread, so the event loop never waits. shutdown() wakes a poll in flight
 * at once; the descriptor is closed only after it has returned.
 *
 * 64-bit Linux only (the struct layouts below are LP64's; keytap ships x64 and arm64 builds).
 */
import { KeytapError } from '../../errors.js';
import { importKoffi } from '../../util/koffi.js';

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const MSG_CTRUNC = 0x8;
const MSG_CMSG_CLOEXEC = 0x40000000;
const POLLIN = 0x1;
const SHUT_RDWR = 2;
const EAGAIN = 11;
const EINTR = 4;
/** sizeof(sockaddr_un.sun_path). */
const SUN_PATH_BYTES = 108;
/** libwayland sends at most 28 descriptors per message; room for a few messages' worth. */
const CONTROL_BYTES = 512;
const RECEIVE_BYTES = 4096;

interface KoffiFunction {
  (...args: unknown[]): unknown;
  async(...args: unknown[]): void;
}

interface Koffi {
  load(path: string | null): { func(declaration: string): KoffiFunction };
  address(value: unknown): bigint;
  errno(): number;
}

interface Libc {
  socket: KoffiFunction;
  connect: KoffiFunction;
  send: KoffiFunction;
  recvmsg: KoffiFunction;
  poll: KoffiFunction;
  shutdown: KoffiFunction;
  close: KoffiFunction;
  strerror: KoffiFunction;
  errno: () => number;
  address: (buffer: Buffer) => bigint;
}

let loaded: Libc | undefined;

async function libc(): Promise<Libc> {
  if (loaded) return loaded;
  if (process.platform !== 'linux' || !['x64', 'arm64'].includes(process.arch)) {
    throw new KeytapError('UNSUPPORTED', `keytap's Wayland client runs on 64-bit Linux only (this is ${process.platform}-${process.arch}).`);
  }
  let koffi: Koffi;
  try {
    koffi = await importKoffi<Koffi>();
  } catch (cause) {
    throw new KeytapError('UNSUPPORTED', 'keytap cannot speak Wayland itself: its FFI binding (koffi) could not be loaded.', { cause });
  }
  // null: the process itself, whose symbols include the C library Node is linked against.
  const lib = koffi.load(null);
  loaded = {
    socket: lib.func('int socket(int domain, int type, int protocol)'),
    connect: lib.func('int connect(int fd, void *addr, uint32_t len)'),
    send: lib.func('intptr_t send(int fd, void *buf, size_t len, int flags)'),
    recvmsg: lib.func('intptr_t recvmsg(int fd, void *msg, int flags)'),
    poll: lib.func('int poll(void *fds, unsigned long nfds, int timeout)'),
    shutdown: lib.func('int shutdown(int fd, int how)'),
    close: lib.func('int close(int fd)'),
    strerror: lib.func('const char *strerror(int errnum)'),
    errno: () => koffi.errno(),
    address: (buffer) => koffi.address(buffer),
  };
  return loaded;
}

export interface Received {
  data: Buffer;
  /** Descriptors that came with the data, in order; the caller owns (and closes) them. */
  fds: number[];
}

/** A connected Unix stream socket (see the module comment). */
export interface FdSocket {
  /** Sends all of `data` or throws (the socket buffer of a compositor that stopped reading is full). */
  send(data: Buffer): void;
  /** Resolves when data (or the end) can be read, or after `timeoutMs`: true when readable. */
  waitReadable(timeoutMs: number): Promise<boolean>;
  /** What is there to read now: undefined when nothing is, 'closed' at the end of the stream. */
  receive(): Received | 'closed' | undefined;
  /** Closes the descriptor once no poll is in flight (shutting the socket down first wakes it). */
  close(): Promise<void>;
}

function socketError(what: string, errno: number, text: string): KeytapError {
  return new KeytapError('UNSUPPORTED', `Could not ${what} the Wayland socket (${text}, errno ${errno}).`);
}

/** Connects to the Unix socket at `path`. */
export async function connectUnixSocket(path: string): Promise<FdSocket> {
  const c = await libc();
  const pathBytes = Buffer.from(path, 'utf8');
  if (pathBytes.length >= SUN_PATH_BYTES) throw new KeytapError('UNSUPPORTED', `The Wayland socket path is longer than a Unix socket address allows (${pathBytes.length} bytes).`);
  const fd = c.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) as number;
  if (fd < 0) throw lastError(c, 'open');
  const address = Buffer.alloc(2 + SUN_PATH_BYTES);
  address.writeUInt16LE(AF_UNIX, 0);
  pathBytes.copy(address, 2);
  if ((c.connect(fd, address, address.length) as number) !== 0) {
    const error = lastError(c, 'connect to');
    c.close(fd);
    throw error;
  }
  return new LibcSocket(c, fd);
}

function lastError(c: Libc, what: string): KeytapError {
  const errno = c.errno();
  return socketError(what, errno, String(c.strerror(errno)));
}

class LibcSocket implements FdSocket {
  private polling: Promise<unknown> | undefined;
  private closed = false;
  private readonly data = Buffer.alloc(RECEIVE_BYTES);
  private readonly control = Buffer.alloc(CONTROL_BYTES);
  private readonly iovec = Buffer.alloc(16);
  private readonly header = Buffer.alloc(56);

  constructor(
    private readonly c: Libc,
    private readonly fd: number,
  ) {
    // struct iovec { void *iov_base; size_t iov_len; } and struct msghdr's pointers, set once:
    // the buffers' memory does not move.
    this.iovec.writeBigUInt64LE(c.address(this.data), 0);
    this.iovec.writeBigUInt64LE(BigInt(RECEIVE_BYTES), 8);
  }

  send(data: Buffer): void {
    if (this.closed) throw socketError('write to', 0, 'closed');
    let offset = 0;
    while (offset < data.length) {
      const rest = data.subarray(offset);
      const sent = Number(this.c.send(this.fd, rest, rest.length, MSG_NOSIGNAL | MSG_DONTWAIT));
      if (sent < 0) {
        if (this.c.errno() === EINTR) continue;
        throw lastError(this.c, 'write to');
      }
      offset += sent;
    }
  }

  waitReadable(timeoutMs: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(true);
    // struct pollfd { int fd; short events; short revents; }
    const pollfd = Buffer.alloc(8);
    pollfd.writeInt32LE(this.fd, 0);
    pollfd.writeInt16LE(POLLIN, 4);
    const polled = new Promise<boolean>((resolve) => {
      this.c.poll.async(pollfd, 1, timeoutMs, (error: unknown, result: number) => resolve(!error && result !== 0));
    });
    this.polling = polled;
    return polled;
  }

  receive(): Received | 'closed' | undefined {
    if (this.closed) return 'closed';
    const header = this.header;
    header.fill(0);
    // struct msghdr { void *name; socklen_t namelen; struct iovec *iov; size_t iovlen;
    //                 void *control; size_t controllen; int flags; } (LP64 offsets)
    header.writeBigUInt64LE(this.c.address(this.iovec), 16);
    header.writeBigUInt64LE(1n, 24);
    header.writeBigUInt64LE(this.c.address(this.control), 32);
    header.writeBigUInt64LE(BigInt(CONTROL_BYTES), 40);
    const got = Number(this.c.recvmsg(this.fd, header, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
    if (got < 0) {
      const errno = this.c.errno();
      if (errno === EAGAIN || errno === EINTR) return undefined;
      throw socketError('read from', errno, String(this.c.strerror(errno)));
    }
    const fds = this.descriptors(Number(header.readBigUInt64LE(40)));
    if (got === 0 && fds.length === 0) return 'closed';
    if ((header.readInt32LE(48) & MSG_CTRUNC) !== 0) {
      for (const fd of fds) this.c.close(fd);
      throw socketError('read from', 0, 'more file descriptors arrived than keytap has room for');
    }
    return { data: Buffer.from(this.data.subarray(0, got)), fds };
  }

  /** The SCM_RIGHTS descriptors in the control data (struct cmsghdr { size_t len; int level; int type; }). */
  private descriptors(controlLength: number): number[] {
    const fds: number[] = [];
    let offset = 0;
    while (offset + 16 <= controlLength) {
      const length = Number(this.control.readBigUInt64LE(offset));
      if (length < 16 || offset + length > controlLength) break;
      if (this.control.readInt32LE(offset + 8) === SOL_SOCKET && this.control.readInt32LE(offset + 12) === SCM_RIGHTS) {
        for (let at = offset + 16; at + 4 <= offset + length; at += 4) fds.push(this.control.readInt32LE(at));
      }
      offset += (length + 7) & ~7;
    }
    return fds;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.c.shutdown(this.fd, SHUT_RDWR);
    await this.polling;
    this.c.close(this.fd);
  }
}
