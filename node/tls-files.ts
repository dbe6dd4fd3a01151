import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { TlsFiles } from './config.ts';

/** The PEM contents of --tls-cert, --tls-key and --tls-ca. */
export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer | undefined;
}

/**
 * Read the TLS files once at start-up and check they make a usable context,
 * so a wrong path, a key of another certificate or a file that is not PEM
 * stops the start with the flag's name instead of failing every handshake.
 */
export function loadTls(files: TlsFiles): TlsMaterial {
  const read = (flag: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new Error(`cannot read --${flag} ${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  };
  const cert = read('tls-cert', files.certFile);
  const key = read('tls-key', files.keyFile);
  const ca = files.caFile === undefined ? undefined : read('tls-ca', files.caFile);
  try {
    createSecureContext({ cert, key });
  } catch (error) {
    throw new Error(`--tls-cert ${files.certFile} and --tls-key ${files.keyFile} do not make a TLS identity: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  if (ca !== undefined) {
    try {
      // A secure context takes any PEM as a CA and ignores what is not a certificate: parse it as one.
      new X509Certificate(ca);
    } catch (error) {
      throw new Error(`--tls-ca ${files.caFile} is not a PEM certificate: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }
  return { cert, key, ca };
}
