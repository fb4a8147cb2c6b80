/**
 * Microsoft Entra ID hardware OATH token CSV (docs/seed-formats.md §1.1–§1.2): `tseeds.csv`.
 *
 *   upn,serial number,secret key,time interval,manufacturer,model
 *
 * TOTP, SHA-1, 6 digits, 30 or 60 s only; the secret in Base32, upper case, without padding,
 * at most 128 characters (80 bytes). Deepnet's tool calls this "BASE64"; it is not, and a file
 * whose secrets look like Base64 or hex is refused with an error that says so (a reader option
 * reads such a third-party file anyway). The writer never quotes: it refuses fields with commas
 * or quotes instead, since Microsoft documents no quoting rules.
 */
import type { OathType } from '../otp/credential.js';
import { base32Decode, base32Encode, hexDecode } from '../otp/encoding.js';
import type { SeedFormat, SeedReadOptions, SeedToken, SeedWriteOptions } from './token.js';
import { UNKNOWN_DEVICE_TEXT, assertWritable, badInput, checkToken } from './token.js';
import {
  classifySecret,
  controlCharacterProblem,
  decodeText,
  eachLine,
  excelScientificMessage,
  fieldCount,
  findLostLeadingZeros,
  isExcelScientific,
  isImpossibleBase32Length,
  mixesCase,
  parseCsvLine,
  shown,
  shownSerial,
  withoutPadding,
} from './text.js';
import type { TextLine } from './text.js';

export const ENTRA_HEADER = 'upn,serial number,secret key,time interval,manufacturer,model';
const COLUMNS = ENTRA_HEADER.split(',');
/** 128 Base32 characters. */
export const ENTRA_MAX_SECRET_BYTES = 80;
export const ENTRA_MAX_SECRET_CHARS = 128;

export interface LineProblem {
  line: number;
  message: string;
}

/** Problems (and warnings) a reader collects before it stops: a broken file of a million lines needs no million messages. */
export const MAX_LINE_PROBLEMS = 1000;

/** Collects line problems up to MAX_LINE_PROBLEMS; `full` says when to stop reading. */
export class LineProblems {
  readonly list: LineProblem[] = [];
  full = false;
  private readonly overflow: string;

  /** `overflow`: the last entry, once the list is full. */
  constructor(overflow = `more than ${MAX_LINE_PROBLEMS} problems; the rest of the file was not looked at`) {
    this.overflow = overflow;
  }

  add(line: number, message: string): void {
    if (this.full) return;
    if (this.list.length === MAX_LINE_PROBLEMS) {
      this.list.push({ line, message: this.overflow });
      this.full = true;
      return;
    }
    this.list.push({ line, message });
  }
}

export const entraFormat: SeedFormat = {
  name: 'entra',
  title: 'Entra ID CSV',
  defaultFileName: (_type: OathType) => 'tseeds.csv',
  accepts: acceptsEntra,
  write: writeEntra,
  read: readEntra,
};

function acceptsEntra(token: SeedToken): string | null {
  const base = checkToken(token);
  if (base !== null) return base;
  if (token.type !== 'TOTP') return 'Entra ID does not support HOTP tokens (use TOTP, or another format such as PSKC)';
  if (token.algorithm !== 'SHA1') return `the Entra CSV carries SHA-1 tokens only, not ${token.algorithm} (the Graph format can take SHA-256)`;
  if (token.digits !== 6) return `Entra ID verifies 6-digit codes only, not ${token.digits}`;
  if (token.period !== 30 && token.period !== 60) return `Entra ID takes a time interval of 30 or 60 s, not ${token.period}`;
  if (token.secret.length > ENTRA_MAX_SECRET_BYTES) return `the secret is ${token.secret.length} bytes; Entra takes at most ${ENTRA_MAX_SECRET_BYTES} (128 Base32 characters)`;
  if (!token.upn) return 'Entra ID assigns every CSV token to a user: a UPN is required (or use the Graph format, which can create unassigned tokens)';
  const upnProblem = checkUpn(token.upn);
  if (upnProblem) return upnProblem;
  for (const field of ['serial', 'manufacturer', 'model'] as const) {
    if (/[,"]/u.test(token[field] ?? '')) return `the ${field === 'serial' ? 'serial number' : field} contains a comma or a quote, which the Entra CSV cannot carry`;
  }
  return null;
}

/** null when the text is a plausible UPN (user@domain.tld), otherwise what is wrong with it. */
export function checkUpn(upn: string): string | null {
  if (upn.length > 113) return `the UPN is ${upn.length} characters; Entra allows at most 113`;
  if (/\s/u.test(upn)) return 'the UPN contains white space';
  const at = upn.lastIndexOf('@');
  if (at < 0 || upn.indexOf('@') !== at) return 'the UPN must have exactly one "@" (user@domain)';
  const local = upn.slice(0, at);
  const domain = upn.slice(at + 1);
  if (local.length === 0 || local.length > 64) return 'the part of the UPN before "@" must be 1 to 64 characters';
  if (!/^[A-Za-z0-9'.\-_!#^~&+]+$/u.test(local)) return 'the part of the UPN before "@" has characters Entra does not allow';
  if (local.startsWith('.') || local.endsWith('.') || local.includes('..')) return 'the part of the UPN before "@" must not start or end with "." or have ".."';
  if (!/^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/u.test(domain)) {
    return 'the domain of the UPN is not a domain name (like contoso.com)';
  }
  return null;
}

function writeEntra(tokens: readonly SeedToken[], options: SeedWriteOptions = {}): Buffer {
  assertWritable(entraFormat, tokens);
  const fallback = (value: string | undefined): string => {
    const text = value ?? UNKNOWN_DEVICE_TEXT;
    if (/[,"\r\n]/u.test(text)) throw badInput('Entra ID CSV: the manufacturer and model must not contain commas, quotes or line breaks.');
    return text;
  };
  const lines = [ENTRA_HEADER];
  for (const token of tokens) {
    lines.push(
      [token.upn!, token.serial, base32Encode(token.secret), String(token.period), fallback(token.manufacturer ?? options.manufacturer), fallback(token.model ?? options.model)].join(','),
    );
  }
  return Buffer.from(`${lines.join('\r\n')}\r\n`, 'utf8');
}

export interface EntraAnalysis {
  tokens: SeedToken[];
  problems: LineProblem[];
  warnings: LineProblem[];
}

/**
 * Reads an Entra CSV and collects every problem with its line. `strict` is the upload check:
 * what Entra would refuse or misread is a problem. Otherwise (re-programming from a file) what
 * keytap can still read unambiguously is only a warning.
 */
export function analyzeEntraCsv(text: string, strict: boolean, secretEncoding: SeedReadOptions['secretEncoding'] = 'base32'): EntraAnalysis {
  const problemList = new LineProblems();
  const warningList = new LineProblems(`more than ${MAX_LINE_PROBLEMS} warnings; the others are not shown`);
  const tokens: SeedToken[] = [];
  const result = (): EntraAnalysis => ({ tokens, problems: problemList.list.sort((a, b) => a.line - b.line), warnings: warningList.list });
  const problem = (line: number, message: string): void => problemList.add(line, message);
  const warn = (line: number, message: string): void => warningList.add(line, message);
  const soft = strict ? problem : warn;
  const lines = eachLine(text);
  const nextLine = (): TextLine | undefined => {
    const next = lines.next();
    return next.done ? undefined : next.value;
  };
  const first = nextLine();
  if (!first || text.trim() === '') {
    problem(1, `the file is empty; it needs the header ${ENTRA_HEADER} and one line per token`);
    return result();
  }
  let pending: TextLine | undefined;
  const headerFields = fieldCount(first.text) <= COLUMNS.length ? (parseCsvLine(first.text) ?? []).map((f) => f.trim().toLowerCase()) : [];
  if (first.text === ENTRA_HEADER) {
    // exact
  } else if (!first.text.includes(',') && /[;\t]/u.test(first.text)) {
    problem(1, `the file uses "${first.text.includes(';') ? ';' : 'tab'}" to separate columns (as Excel does in some locales); Entra needs commas`);
    return result();
  } else if (headerFields.join(',') === ENTRA_HEADER) {
    soft(1, `the header must be exactly "${ENTRA_HEADER}" (lower case, single spaces, no quotes)`);
  } else if (headerFields.join(',') === ENTRA_HEADER.replace('time interval', 'timeinterval')) {
    soft(1, `the header says "timeinterval" (Deepnet's spelling); Microsoft's is "time interval": use "${ENTRA_HEADER}"`);
  } else if (headerFields[0] === 'upn' || headerFields.includes('secret key') || headerFields.includes('serial number')) {
    problem(1, `the header has the wrong columns; it must be "${ENTRA_HEADER}"`);
    return result();
  } else {
    problem(1, `the header row is missing; the first line must be "${ENTRA_HEADER}"`);
    pending = first;
  }

  const serialLines = new Map<string, number>();
  const secretLines = new Map<string, number>();
  const serials: { serial: string; place: string; line: number }[] = [];
  // One line of lookahead: the last line may be cut short, and an empty last line is no problem.
  let current = pending ?? nextLine();
  while (current && !problemList.full) {
    const following = nextLine();
    if (current.text.trim() !== '') checkDataLine(current, following === undefined);
    else if (following !== undefined) soft(current.number, 'the line is empty');
    current = following;
  }

  function checkDataLine({ number, text: lineText }: TextLine, isLast: boolean): void {
    const count = fieldCount(lineText);
    const fields = count <= COLUMNS.length ? parseCsvLine(lineText) : [];
    if (!fields) {
      problem(number, 'a quoted field is not closed');
      return;
    }
    if (count > COLUMNS.length || fields.length !== COLUMNS.length) {
      const n = count > COLUMNS.length ? count : fields.length;
      const cut = n < COLUMNS.length && isLast ? ' (is the file cut short?)' : '';
      problem(number, `the line has ${n} field${n === 1 ? '' : 's'}; it needs ${COLUMNS.length} (${COLUMNS.join(', ')})${cut}`);
      return;
    }
    const [upn, serial, secretText, interval, manufacturer, model] = fields.map((f) => f.trim()) as [string, string, string, string, string, string];
    let ok = true;
    const lineProblem = (message: string): void => {
      problem(number, message);
      ok = false;
    };

    for (const [field, value] of [['upn', upn], ['serial number', serial], ['manufacturer', manufacturer], ['model', model]] as const) {
      const control = controlCharacterProblem(field, value);
      if (control) lineProblem(control);
    }

    if (upn === '') soft(number, 'the upn is empty; Entra assigns every token in the CSV to a user');
    else {
      const upnProblem = checkUpn(upn);
      if (upnProblem) soft(number, upnProblem);
    }

    if (serial === '') lineProblem('the serial number is empty');
    else if (isExcelScientific(serial)) lineProblem(excelScientificMessage(serial));
    else {
      const earlier = serialLines.get(serial);
      if (earlier !== undefined) lineProblem(`the serial number ${shownSerial(serial)} repeats line ${earlier}`);
      else serialLines.set(serial, number);
      serials.push({ serial, place: `line ${number}`, line: number });
    }

    const secret = readSecret(secretText, secretEncoding, lineProblem, (message) => soft(number, message), (message) => warn(number, message));

    let period = 30;
    if (interval === '30' || interval === '60') period = Number(interval);
    else lineProblem(interval === '' ? 'the time interval is empty; Entra takes 30 or 60' : `the time interval is ${shown(interval)}; Entra takes 30 or 60 (seconds)`);

    if (manufacturer === '' || model === '') {
      warn(number, `the ${manufacturer === '' ? 'manufacturer' : 'model'} is empty`);
    }
    if (secret) {
      const key = Buffer.from(secret).toString('hex');
      const earlier = secretLines.get(key);
      if (earlier !== undefined) warn(number, `the secret key is the same as on line ${earlier}`);
      else secretLines.set(key, number);
      if (secret.length < 16) warn(number, `the secret is ${secret.length} bytes; RFC 4226 asks for at least 16`);
    }
    if (ok && secret) {
      tokens.push({
        serial,
        secret,
        type: 'TOTP',
        algorithm: 'SHA1',
        digits: 6,
        period,
        counter: 0,
        upn: upn || undefined,
        manufacturer: manufacturer || undefined,
        model: model || undefined,
      });
    }
  }
  for (const lost of findLostLeadingZeros(serials)) problem(Number(lost.place.slice(5)), lost.message);
  return result();
}

/** The secret column; every message names the problem, never the secret. */
function readSecret(
  text: string,
  encoding: SeedReadOptions['secretEncoding'],
  problem: (message: string) => void,
  soft: (message: string) => void,
  warn: (message: string) => void,
): Uint8Array | undefined {
  if (encoding === 'hex') {
    try {
      return hexDecode(text);
    } catch {
      problem('the secret key is not valid hex');
      return undefined;
    }
  }
  if (encoding === 'base64') {
    const compact = withoutPadding(text);
    if (!/^[A-Za-z0-9+/]+$/u.test(compact) || compact.length % 4 === 1) {
      problem('the secret key is not valid Base64');
      return undefined;
    }
    return Uint8Array.from(Buffer.from(compact, 'base64'));
  }
  const kind = classifySecret(text);
  const base64Hint = 'this looks like Base64; Entra wants Base32';
  switch (kind) {
    case 'empty':
      problem('the secret key is empty');
      return undefined;
    case 'hex':
      problem('the secret key looks like hex (it has 0, 1, 8 or 9, which Base32 does not use); Entra wants Base32');
      return undefined;
    case 'base64': {
      const why = /[+/]/u.test(text)
        ? 'it contains "+" or "/"'
        : text.endsWith('=')
          ? 'its "=" padding fits Base64, not Base32'
          : 'it has digits (0, 1, 8, 9) that Base32 does not use';
      problem(`the secret key: ${base64Hint} (${why})`);
      return undefined;
    }
    case 'invalid':
      problem('the secret key has characters other than A–Z and 2–7 (spaces or punctuation?); Entra wants plain Base32');
      return undefined;
    case 'base32-padded':
      soft('the secret key has "=" padding; Entra wants Base32 without padding');
      break;
    case 'base32':
      break;
  }
  const body = withoutPadding(text);
  if (isImpossibleBase32Length(body.length)) {
    problem(`the secret key is ${body.length} characters, a length Base32 never has (cut short?)${mixesCase(body) ? `; ${base64Hint}` : ''}`);
    return undefined;
  }
  if (mixesCase(body)) warn(`the secret key mixes upper and lower case, which Base32 encoders never do; if it is Base64, it will give wrong codes (${base64Hint}?)`);
  if (body.length > ENTRA_MAX_SECRET_CHARS) soft(`the secret key is ${body.length} characters; Entra takes at most ${ENTRA_MAX_SECRET_CHARS}`);
  try {
    return base32Decode(body);
  } catch {
    problem('the secret key is not valid Base32');
    return undefined;
  }
}

function readEntra(bytes: Uint8Array, options: SeedReadOptions = {}): SeedToken[] {
  const analysis = analyzeEntraCsv(decodeText(bytes, 'Entra CSV file'), false, options.secretEncoding);
  for (const warning of analysis.warnings) options.onWarning?.(warning);
  if (analysis.problems.length > 0) throw problemsError('Entra CSV file', analysis.problems);
  return analysis.tokens;
}

/** One BAD_INPUT for a list of line problems: the first few in the message, the count of the rest. */
export function problemsError(what: string, problems: readonly LineProblem[]): Error {
  const shown = problems.slice(0, 10).map((p) => `line ${p.line}: ${p.message}`);
  const more = problems.length > shown.length ? `\n… and ${problems.length - shown.length} more` : '';
  return badInput(
    `The ${what} has ${problems.length === 1 ? 'a problem' : `${problems.length} problems`}:\n${shown.join('\n')}${more}`,
    problems.some((p) => /Base64|\bhex\b/u.test(p.message)) ? 'If a third-party file really carries hex or Base64 secrets, read it with that secret encoding chosen explicitly.' : undefined,
    { kind: 'invalid-seed-file', line: problems[0]?.line },
  );
}
