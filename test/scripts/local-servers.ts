/** Throwaway HTTP servers on 127.0.0.1 (fake nodes) for the script tests, each closed after its test. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach } from 'vitest';

const servers: http.Server[] = [];

/** Register the hook that closes every server a test started (call once per file). */
export function useLocalServers(): void {
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  });
}

/** A server on a free port answering with `handler`; resolves with its base URL. */
export async function serve(handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}
