/** Ctrl-C (SIGINT) or SIGTERM as a request to stop: long-running commands finish their summary and exit 0. */
export interface StopSignal {
  readonly requested: boolean;
  /** Resolves with the signal once one arrives. */
  readonly stopped: Promise<NodeJS.Signals>;
  /** Waits `ms`, or less if a stop arrives first. */
  sleep(ms: number): Promise<void>;
  /** Removes the handlers, so a later signal acts as it normally would. */
  dispose(): void;
}

export function listenForStop(): StopSignal {
  let requested = false;
  let resolveStopped: (signal: NodeJS.Signals) => void = () => undefined;
  const stopped = new Promise<NodeJS.Signals>((resolve) => (resolveStopped = resolve));
  const onSignal = (signal: NodeJS.Signals): void => {
    // A second Ctrl-C (npx relays the first one too) is the same request, not a new one.
    if (requested) return;
    requested = true;
    resolveStopped(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    get requested() {
      return requested;
    },
    stopped,
    sleep(ms) {
      if (requested || ms <= 0) return Promise.resolve();
      let timer: NodeJS.Timeout | undefined;
      return Promise.race([new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))), stopped.then(() => undefined)]).finally(() => clearTimeout(timer));
    },
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
