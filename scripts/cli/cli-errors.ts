/** A bad command line: main prints the message with a hint to --help and exits 2. */
export class UsageError extends Error {
  readonly code = 'HITMESH_CLI_USAGE';
  constructor(
    message: string,
    /** The command whose --help the hint names; undefined for the overall help. */
    readonly command?: string,
  ) {
    super(message);
  }
}

/** The nodes could not be reached or answered an error: main prints the message and exits 1. */
export class CommandFailure extends Error {
  readonly code = 'HITMESH_CLI_FAILED';
}
