/**
 * Named points in a programming run where the crash-safety tests kill the programmer with
 * SIGKILL (`KEYTAP_TEST_CRASH_AT=POINT` or `POINT@N` for the N-th key of the run, 1-based).
 * SIGKILL, not an exception: nothing may run after it, exactly as after a power cut. Without the
 * variable every call is a no-op.
 */
export const CRASH_POINTS = ['after-ledger-append', 'after-put', 'after-verify', 'after-ledger-done', 'mid-export'] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

export const CRASH_ENV = 'KEYTAP_TEST_CRASH_AT';

export function crashPoint(point: CrashPoint, keyNumber: number): void {
  const spec = process.env[CRASH_ENV];
  if (!spec) return;
  const [name, n] = spec.split('@');
  if (name !== point) return;
  if (n !== undefined && Number(n) !== keyNumber) return;
  process.kill(process.pid, 'SIGKILL');
}
