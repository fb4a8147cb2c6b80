/**
 * A stand-in for the PC/SC library (pcsc-api.ts `PcscLibrary`) that answers what pcsc-lite or
 * winscard answer in cases a real pcscd + vpcd cannot be made to produce on purpose.
 */
import { SCARD, ScardError } from '../../src/device/transport/pcsc-api.js';
import type { CardConnection, PcscLibrary, ReaderState, ScardCodeName, ScardHandle } from '../../src/device/transport/pcsc-api.js';

export interface Script {
  establish?: ScardCodeName;
  /** One entry per connect attempt; the last one repeats. 'hang': SCardConnect returns only at `finishHangingConnect`. */
  connect?: Array<ScardCodeName | 'ok' | 'hang'>;
  transmit?: (apdu: Uint8Array) => Promise<Uint8Array>;
  status?: ScardCodeName | 'ok';
}

export class FakePcsc implements PcscLibrary {
  readonly abi = { name: 'pcsc-lite', library: 'fake', dword: 'unsigned long', long: 'long', handle: 'long', atrSize: 33, packed: false, stringSuffix: '', convention: undefined, nameEncoding: 'utf8' } as const;
  readonly calls: string[] = [];
  private connects = 0;
  private readonly hanging: Array<() => void> = [];

  constructor(private readonly script: Script) {}

  establishContext(): Promise<ScardHandle> {
    this.calls.push('establish');
    if (this.script.establish) return Promise.reject(new ScardError('SCardEstablishContext', SCARD[this.script.establish]));
    return Promise.resolve(7);
  }

  releaseContext(): Promise<void> {
    this.calls.push('release');
    return Promise.resolve();
  }

  listReaders(): Promise<string[]> {
    return Promise.resolve(['Reader 00 00']);
  }

  getStatusChange(_context: ScardHandle, _timeout: number, _states: ReaderState[]): Promise<number> {
    return Promise.resolve(SCARD.S_SUCCESS);
  }

  cancel(): number {
    return SCARD.S_SUCCESS;
  }

  connect(): Promise<CardConnection> {
    const steps = this.script.connect ?? ['ok'];
    const step = steps[Math.min(this.connects++, steps.length - 1)]!;
    this.calls.push(`connect ${step}`);
    if (step === 'hang') return new Promise((resolve) => this.hanging.push(() => resolve({ card: 11, protocol: 2 })));
    if (step !== 'ok') return Promise.reject(new ScardError('SCardConnect', SCARD[step]));
    return Promise.resolve({ card: 11, protocol: 2 });
  }

  /** Lets every hanging SCardConnect return, connected. */
  finishHangingConnect(): void {
    for (const finish of this.hanging.splice(0)) finish();
  }

  transmit(_connection: CardConnection, apdu: Uint8Array): Promise<Uint8Array> {
    this.calls.push('transmit');
    return this.script.transmit ? this.script.transmit(apdu) : Promise.resolve(Uint8Array.of(0x90, 0x00));
  }

  status(): Promise<{ state: number; protocol: number; atr: Uint8Array }> {
    this.calls.push('status');
    const status = this.script.status ?? 'ok';
    if (status !== 'ok') return Promise.reject(new ScardError('SCardStatus', SCARD[status]));
    return Promise.resolve({ state: 0x34, protocol: 2, atr: new Uint8Array(0) });
  }

  disconnect(): Promise<void> {
    this.calls.push('disconnect');
    return Promise.resolve();
  }
}

