/**
 * Throwaway certificate authorities and node certificates for the TLS tests,
 * made on the fly with the openssl command (Debian's openssl; .ci/run
 * installs it when missing). P-256 keys: quick to make.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

export interface TestCa extends CertFiles {
  readonly name: string;
  /** A certificate for a node, signed by this CA, good for serverAuth and clientAuth on the given IPs and names. */
  issue(name: string, sans?: readonly string[]): Promise<CertFiles>;
}

async function openssl(args: readonly string[]): Promise<void> {
  try {
    await run('openssl', [...args]);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ENOENT') throw new Error('openssl is not installed: apt-get install openssl (.ci/run does)', { cause: error });
    throw error;
  }
}

const KEY_ARGS = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export async function makeCa(dir: string, name: string): Promise<TestCa> {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  await openssl(['req', '-x509', ...KEY_ARGS, '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`]);
  const issue = async (node: string, sans: readonly string[] = ['IP:127.0.0.1', 'DNS:localhost']): Promise<CertFiles> => {
    const base = join(dir, `${name}-${node}`);
    await writeFile(`${base}.ext`, `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=${sans.join(',')}\n`);
    await openssl(['req', ...KEY_ARGS, '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${node}`]);
    await openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', cert, '-CAkey', key, '-CAcreateserial', '-out', `${base}.pem`, '-days', '2', '-extfile', `${base}.ext`]);
    return { cert: `${base}.pem`, key: `${base}.key` };
  };
  return { name, cert, key, issue };
}
