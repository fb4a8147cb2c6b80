/**
 * The points in programming a key after which what is durable has changed: the ledger has the
 * seed, the key has it, the key's code checked out, the ledger says done, a seed file is written
 * but not yet renamed into place. `afterStep` (in RunOptions and ProgramKeyOptions) is called at
 * each; production code passes none. The crash-safety tests (test/cli/program-crash.test.ts) kill
 * the process there with SIGKILL, from a test-only entry script that installs the hook.
 */
export const PROGRAM_STEPS = ['after-ledger-append', 'after-put', 'after-verify', 'after-ledger-done', 'mid-export'] as const;
export type ProgramStep = (typeof PROGRAM_STEPS)[number];

/** Called at a step of programming the run's `keyNumber`-th key (1-based). */
export type StepHook = (step: ProgramStep, keyNumber: number) => void;
