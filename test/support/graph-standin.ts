/**
 * A local HTTPS stand-in for Microsoft Entra ID: the identity endpoints @azure/identity (MSAL)
 * uses for the client-secret and device-code flows against a local authority, and the Graph beta
 * hardware OATH requests keytap sends (docs/seed-formats.md §1.3), with Graph's error shape
 * `{"error":{"code","message","innerError":{"request-id","date"}}}`. It checks activation codes
 * against the seed it was given at the time it receives them (±1 step), and records every request.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { base32Decode } from '../../src/otp/encoding.js';
import { totp } from '../../src/otp/hotp.js';
import type { HashAlgorithm } from '../../src/otp/credential.js';

export const TLS_DIR = join(import.meta.dirname, '..', 'fixtures', 'tls');
export const STANDIN_CA = join(TLS_DIR, 'localhost.crt');
export const TENANT = '11111111-2222-3333-4444-555555555555';
export const CLIENT_ID = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
export const CLIENT_SECRET = 'stand-in-client-secret-value';

export interface RecordedGraphRequest {
  method: string;
  path: string;
  /** The path and query, URL-decoded. */
  url: string;
  body: unknown;
  /** Milliseconds since the epoch at receipt. */
  time: number;
  authorization: string | undefined;
}

export interface StandinDevice {
  id: string;
  serialNumber: string;
  manufacturer: string;
  model: string;
  secretKey: string;
  timeIntervalInSeconds: number;
  hashFunction: string;
  displayName: string | null;
  status: 'available' | 'assigned' | 'activated' | 'failedActivation';
  assignedTo: { id: string; displayName: string } | null;
}

export interface Activation {
  serial: string;
  upn: string;
  code: string;
  time: number;
  accepted: boolean;
}

/** Failures to inject, each used up as it is answered. */
export interface Faults {
  /** Answer the next N Graph requests with 429 (or `status` 503, Service Unavailable) and this Retry-After. */
  throttle?: { times: number; retryAfter: string; status?: 429 | 503 } | undefined;
  /** Answer the next N activation requests with 429 and this Retry-After. */
  throttleActivation?: { times: number; retryAfter: string } | undefined;
  /** Answer the next Graph request with 401 InvalidAuthenticationToken. */
  expireToken?: boolean | undefined;
  /** Answer every inventory request with 403. */
  forbidInventory?: boolean | undefined;
  /** Answer every user-method request with 403. */
  forbidUserMethods?: boolean | undefined;
  /** Answer device creation with the policy-disabled error. */
  policyDisabled?: boolean | undefined;
}

const DEVICES = '/beta/directory/authenticationMethodDevices/hardwareOathDevices';

export class GraphStandin {
  readonly requests: RecordedGraphRequest[] = [];
  readonly devices: StandinDevice[] = [];
  readonly activations: Activation[] = [];
  /** Users of the tenant, by UPN (lower case) → object id. */
  readonly users = new Map<string, string>();
  faults: Faults = {};
  tokensIssued = 0;
  private server: Server | undefined;
  private port = 0;
  private scheme = 'https';

  addUser(upn: string): void {
    this.users.set(upn.toLowerCase(), randomUUID());
  }

  get url(): string {
    return `${this.scheme}://localhost:${this.port}`;
  }

  get graphUrl(): string {
    return `${this.url}/beta`;
  }

  /**
   * What a keytap child process needs to sign in here and reach this Graph: the stand-in's
   * certificate trusted, its authority, the app registration, and the client secret ('' for none).
   */
  clientEnv(secret = CLIENT_SECRET): NodeJS.ProcessEnv {
    return {
      NODE_EXTRA_CA_CERTS: STANDIN_CA,
      AZURE_AUTHORITY_HOST: this.url,
      AZURE_TENANT_ID: TENANT,
      AZURE_CLIENT_ID: CLIENT_ID,
      KEYTAP_GRAPH_URL: this.graphUrl,
      AZURE_CLIENT_SECRET: '',
      KEYTAP_ENTRA_CLIENT_SECRET: secret,
    };
  }

  /** Graph requests only (not the identity endpoints). */
  graphRequests(): RecordedGraphRequest[] {
    return this.requests.filter((r) => r.path.startsWith('/beta/'));
  }

  /**
   * HTTPS for a child process (it trusts the certificate through NODE_EXTRA_CA_CERTS, read only at
   * start-up); plain HTTP for a client in the test's own process, which cannot be told to trust it.
   */
  async start(options: { tls?: boolean } = {}): Promise<void> {
    const handler = (req: IncomingMessage, res: ServerResponse): void => void this.handle(req, res);
    this.scheme = options.tls === false ? 'http' : 'https';
    this.server = options.tls === false ? createHttpServer(handler) : createServer({ key: readFileSync(join(TLS_DIR, 'localhost.key')), cert: readFileSync(STANDIN_CA) }, handler);
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', this.url);
    const contentType = req.headers['content-type'] ?? '';
    let body: unknown = undefined;
    if (raw !== '') {
      try {
        body = contentType.includes('json') ? (JSON.parse(raw) as unknown) : Object.fromEntries(new URLSearchParams(raw));
      } catch {
        // As Graph does: a body that is not JSON is a 400, not a request left without an answer.
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'BadRequest', message: 'Unable to read JSON request payload.' } }));
        return;
      }
    }
    this.requests.push({ method: req.method ?? '', path: url.pathname, url: decodeURIComponent(url.pathname + url.search), body, time: Date.now(), authorization: req.headers.authorization });
    const send = (status: number, value?: unknown, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { ...(value === undefined ? {} : { 'content-type': 'application/json' }), ...headers });
      res.end(value === undefined ? undefined : JSON.stringify(value));
    };
    if (!url.pathname.startsWith('/beta/')) return this.identity(req.method ?? '', url, body as Record<string, string> | undefined, send);
    return this.graph(req, url, body, send);
  }

  private identity(method: string, url: URL, form: Record<string, string> | undefined, send: (status: number, value?: unknown) => void): void {
    const base = `${this.url}/${TENANT}`;
    if (method === 'GET' && /\/v2\.0\/\.well-known\/openid-configuration$/u.test(url.pathname)) {
      return send(200, {
        issuer: `${base}/v2.0`,
        authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
        token_endpoint: `${base}/oauth2/v2.0/token`,
        device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
        end_session_endpoint: `${base}/oauth2/v2.0/logout`,
        jwks_uri: `${base}/discovery/v2.0/keys`,
        response_types_supported: ['code', 'id_token', 'token'],
        scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      });
    }
    if (method === 'POST' && url.pathname.endsWith('/oauth2/v2.0/devicecode')) {
      return send(200, {
        user_code: 'STANDIN1',
        device_code: 'stand-in-device-code',
        verification_uri: `${this.url}/devicelogin`,
        expires_in: 900,
        interval: 1,
        message: `To sign in, open ${this.url}/devicelogin and enter the code STANDIN1.`,
      });
    }
    if (method === 'POST' && url.pathname.endsWith('/oauth2/v2.0/token')) {
      const grant = form?.grant_type;
      const good =
        (grant === 'client_credentials' && form?.client_id === CLIENT_ID && form.client_secret === CLIENT_SECRET) ||
        // A certificate sign-in sends a signed assertion; the stand-in takes its form, not its signature.
        (grant === 'client_credentials' && form?.client_id === CLIENT_ID && form.client_assertion_type === 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' && (form.client_assertion ?? '').split('.').length === 3) ||
        // MSAL sends the short "device_code"; RFC 8628 names the URN.
        ((grant === 'device_code' || grant === 'urn:ietf:params:oauth:grant-type:device_code') && form?.device_code === 'stand-in-device-code');
      if (!good) return send(401, { error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided.', error_codes: [7000215] });
      this.tokensIssued++;
      const oid = randomUUID();
      const idToken =
        grant === 'client_credentials'
          ? {}
          : {
              id_token: unsignedJwt({ aud: CLIENT_ID, iss: `${base}/v2.0`, tid: TENANT, oid, preferred_username: 'admin@contoso.example', sub: 'admin' }),
              client_info: Buffer.from(JSON.stringify({ uid: oid, utid: TENANT })).toString('base64url'),
              refresh_token: 'stand-in-refresh',
            };
      return send(200, { token_type: 'Bearer', expires_in: 3600, ext_expires_in: 3600, access_token: `stand-in-access-${this.tokensIssued}`, scope: form?.scope ?? '', ...idToken });
    }
    return send(404, { error: 'not_found' });
  }

  private graph(req: IncomingMessage, url: URL, body: unknown, send: (status: number, value?: unknown, headers?: Record<string, string>) => void): void {
    const fail = (status: number, code: string, message: string, headers: Record<string, string> = {}): void =>
      send(status, { error: { code, message, innerError: { 'request-id': randomUUID(), date: new Date().toISOString() } } }, headers);
    if (!req.headers.authorization?.startsWith('Bearer stand-in-access-')) return fail(401, 'InvalidAuthenticationToken', 'Access token is empty.');
    if (this.faults.expireToken) {
      this.faults.expireToken = false;
      const claims = Buffer.from('{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}').toString('base64');
      return fail(401, 'InvalidAuthenticationToken', 'Lifetime validation failed, the token is expired.', {
        'www-authenticate': `Bearer realm="", authorization_uri="${this.url}/${TENANT}/oauth2/authorize", error="insufficient_claims", claims="${claims}"`,
      });
    }
    if (this.faults.throttle && this.faults.throttle.times > 0) {
      this.faults.throttle.times--;
      if (this.faults.throttle.status === 503) return fail(503, 'ServiceUnavailable', 'The service is temporarily unavailable.', { 'retry-after': this.faults.throttle.retryAfter });
      return fail(429, 'TooManyRequests', 'Too many requests.', { 'retry-after': this.faults.throttle.retryAfter });
    }
    const path = url.pathname;
    const method = req.method;
    if (this.faults.throttleActivation && this.faults.throttleActivation.times > 0 && path.endsWith('/activate')) {
      this.faults.throttleActivation.times--;
      return fail(429, 'TooManyRequests', 'Too many requests.', { 'retry-after': this.faults.throttleActivation.retryAfter });
    }
    if (path === DEVICES) {
      if (this.faults.forbidInventory) return fail(403, 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation.');
      if (method === 'GET') {
        const filter = /^serialNumber eq '((?:[^']|'')*)'$/u.exec(url.searchParams.get('$filter') ?? '');
        const chosen = filter ? this.devices.filter((d) => d.serialNumber === filter[1]!.replace(/''/gu, "'")) : this.devices;
        return send(200, { value: chosen.map(publicDevice) });
      }
      if (method === 'POST' || method === 'PATCH') {
        if (this.faults.policyDisabled) return fail(400, 'badRequest', 'The hardware OATH authentication method is disabled in the authentication methods policy.');
        const record = body as Record<string, unknown>;
        if (record['@context'] === '#$delta' && Array.isArray(record.value)) {
          const made = (record.value as Record<string, unknown>[]).map((d) => this.createDevice(d));
          if (made.some((d) => typeof d === 'string')) return fail(400, 'badRequest', made.find((d) => typeof d === 'string') as string);
          return send(201, { value: (made as StandinDevice[]).map((d) => ({ id: d.id, device: publicDevice(d) })) });
        }
        const made = this.createDevice(record);
        if (typeof made === 'string') return fail(made.includes('already') ? 409 : 400, made.includes('already') ? 'conflict' : 'badRequest', made);
        return send(201, publicDevice(made));
      }
    }
    const user = /^\/beta\/users\/([^/]+)\/authentication\/hardwareOathMethods(?:\/([^/]+)\/(activate))?$/u.exec(path);
    if (user) {
      if (this.faults.forbidUserMethods) return fail(403, 'accessDenied', 'Request Authorization failed.');
      const upn = decodeURIComponent(user[1]!).toLowerCase();
      const userId = this.users.get(upn);
      if (userId === undefined) return fail(404, 'Request_ResourceNotFound', `Resource '${upn}' does not exist or one of its queried reference-property objects are not present.`);
      if (method === 'GET' && !user[2]) {
        return send(200, { value: this.devices.filter((d) => d.assignedTo?.id === userId).map((d) => ({ id: d.id, displayName: d.displayName, device: publicDevice(d) })) });
      }
      if (method === 'POST' && !user[2]) {
        const id = ((body as { device?: { id?: string } }).device ?? {}).id;
        const device = this.devices.find((d) => d.id === id);
        if (!device) return fail(404, 'Request_ResourceNotFound', 'The device does not exist.');
        if (device.assignedTo && device.assignedTo.id !== userId) return fail(400, 'badRequest', 'The device is already assigned to another user.');
        device.assignedTo = { id: userId, displayName: upn };
        device.status = 'assigned';
        return send(201, { id: device.id, displayName: device.displayName, device: publicDevice(device) });
      }
      if (method === 'POST' && user[3] === 'activate') {
        const device = this.devices.find((d) => d.id === decodeURIComponent(user[2]!) && d.assignedTo?.id === userId);
        if (!device) return fail(404, 'Request_ResourceNotFound', 'The method does not exist.');
        const given = (body as { verificationCode?: unknown }).verificationCode;
        const code = typeof given === 'string' ? given : '';
        const now = Date.now();
        const accepted = codeMatches(device, code, now / 1000);
        this.activations.push({ serial: device.serialNumber, upn, code, time: now, accepted });
        if (!accepted) {
          device.status = 'failedActivation';
          return fail(400, 'badRequest', 'Invalid verification code.');
        }
        device.status = 'activated';
        return send(204);
      }
    }
    return fail(404, 'Request_ResourceNotFound', `No such resource: ${method} ${path}`);
  }

  private createDevice(input: Record<string, unknown>): StandinDevice | string {
    const serial = input.serialNumber;
    if (typeof serial !== 'string' || typeof input.secretKey !== 'string' || typeof input.manufacturer !== 'string' || typeof input.model !== 'string') {
      return 'serialNumber, secretKey, manufacturer and model are required.';
    }
    if (this.devices.some((d) => d.serialNumber === serial)) return `A device with serial number ${serial} already exists.`;
    const device: StandinDevice = {
      id: randomUUID(),
      serialNumber: serial,
      manufacturer: input.manufacturer,
      model: input.model,
      secretKey: input.secretKey,
      timeIntervalInSeconds: Number(input.timeIntervalInSeconds),
      hashFunction: typeof input.hashFunction === 'string' ? input.hashFunction : 'hmacsha1',
      displayName: typeof input.displayName === 'string' ? input.displayName : null,
      status: 'available',
      assignedTo: null,
    };
    this.devices.push(device);
    return device;
  }
}

function publicDevice(d: StandinDevice): Record<string, unknown> {
  return { ...d, secretKey: null };
}

function codeMatches(device: StandinDevice, code: string, nowSeconds: number): boolean {
  const algorithm: HashAlgorithm = device.hashFunction === 'hmacsha256' ? 'SHA256' : 'SHA1';
  const secret = base32Decode(device.secretKey);
  const period = device.timeIntervalInSeconds;
  return [-1, 0, 1].some((step) => totp(secret, nowSeconds + step * period, period, 6, algorithm) === code);
}

function unsignedJwt(claims: Record<string, unknown>): string {
  const part = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return `${part({ alg: 'none', typ: 'JWT' })}.${part({ ...claims, iat: now, nbf: now, exp: now + 3600 })}.`;
}
