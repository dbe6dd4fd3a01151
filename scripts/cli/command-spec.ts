/** What every command declares: its flags and positionals for parseArgs and --help, and how it runs. */
export interface FlagSpec {
  readonly name: string;
  readonly short?: string;
  /** Placeholder of the value in --help; undefined for a switch. */
  readonly value?: string;
  readonly multiple?: boolean;
  readonly help: string;
}

export interface GlobalOptions {
  readonly urls: readonly string[];
  readonly json: boolean;
  readonly token: string | undefined;
  readonly timeoutMs: number | undefined;
}

export type FlagValue = string | boolean | readonly (string | boolean)[] | undefined;
export type FlagValues = Readonly<Record<string, FlagValue>>;

export interface Invocation {
  readonly global: GlobalOptions;
  readonly positionals: readonly string[];
  readonly flags: FlagValues;
}

export interface CommandSpec {
  readonly name: string;
  readonly summary: string;
  /** Everything after `hitmesh` in the usage line. */
  readonly usage: string;
  /** Names of the positionals, all required, in order. */
  readonly positionals: readonly string[];
  readonly flags: readonly FlagSpec[];
  /** Extra lines for --help (exit codes, output). */
  readonly notes?: readonly string[];
  /** Resolves with the exit code; throws UsageError or CommandFailure for the expected failures. */
  run(invocation: Invocation): Promise<number>;
}
