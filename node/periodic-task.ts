/** A background job on a timer, never two runs at once; `stop` clears the timer and waits for a run in progress. */
export class PeriodicTask {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  /** `job` must not reject: it logs its own failures and is retried on the next run. */
  constructor(
    private readonly job: () => Promise<void>,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.run(), this.intervalMs);
    this.timer.unref();
  }

  /** Run now, or join the run in progress. */
  run(): Promise<void> {
    this.running ??= this.job().finally(() => (this.running = undefined));
    return this.running;
  }

  /** Resolves once no run is under way (a run started meanwhile is waited for too). */
  async idle(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
