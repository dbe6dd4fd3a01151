/**
 * deploy/: no Docker engine or cluster runs here, so the files are checked
 * against the code they deploy. Each checker returns its problems (empty is
 * good) so that broken copies can show the checks fail.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StatefulSet, type IStatefulSet } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget, type IPodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { Secret, Service, type ISecret, type IService } from 'kubernetes-models/v1';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { envNames, parseCli } from '../../node/cli.ts';
import { startNode, type RunningNode } from '../../node/start-node.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const K8S = join(ROOT, 'deploy/k8s');
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');
/** startNode's default shutdown grace (no exported constant): read from its source, so a change there is seen here. */
const GRACE_S = Number(/shutdownGraceMs \?\? ([\d_]+)/.exec(read('node/start-node.ts'))?.[1]?.replaceAll('_', '')) / 1000;
const NODE_ENV = new Set(envNames());
/** Set by the pod spec for $(...) references, not read by the node. */
const K8S_ONLY = new Set(['POD_NAMESPACE', 'POD_IP']);
/** In deploy/k8s but deliberately not in kustomization.yaml's resources (each file says why). */
const UNLISTED = new Set(['secret.example.yaml', 'servicemonitor.yaml']);
/** What the downward API would give one pod. */
const FIELDS: Record<string, string> = { 'metadata.name': 'hitmesh-0', 'metadata.namespace': 'test-ns', 'status.podIP': '10.1.2.3' };
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1 StatefulSet': StatefulSet, 'v1 Service': Service, 'v1 Secret': Secret, 'policy/v1 PodDisruptionBudget': PodDisruptionBudget,
};

type Obj = Record<string, unknown> & { apiVersion?: string; kind?: string; metadata?: { name?: string; labels?: Record<string, string> } };
interface ServiceMonitor { spec?: { selector?: { matchLabels?: Record<string, string> }; endpoints?: { port?: string; path?: string; authorization?: { type?: string; credentials?: { name?: string; key?: string } } }[] } }

function parseYaml(text: string, where: string): Obj[] {
  return parseAllDocuments(text, { merge: true }).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${where}: ${doc.errors.map((e) => e.message).join('; ')}`);
    return doc.toJS() as Obj;
  });
}
const loadK8s = (): Map<string, Obj[]> => new Map(readdirSync(K8S).filter((f) => f.endsWith('.yaml')).map((f) => [f, parseYaml(readFileSync(join(K8S, f), 'utf8'), f)]));

/** Does every label a selector asks for sit on the pod template? */
const selects = (selector: Record<string, string> | undefined, labels: Record<string, string>): boolean =>
  selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);

/** Parse with the node's own CLI: problems, or the config. */
function cli(argv: readonly string[], env: Record<string, string>, where: string, problems: string[]): ReturnType<typeof parseCli> | undefined {
  try {
    return parseCli(argv, env);
  } catch (error) {
    problems.push(`${where}: the node refuses its flags: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
}
const checkNames = (names: readonly string[], where: string, problems: string[]): void => {
  for (const name of names) if (!NODE_ENV.has(name) && !K8S_ONLY.has(name)) problems.push(`${where}: ${name} is not a variable the node reads`);
};

// ---- Dockerfile
interface Dockerfile { readonly stages: { from: string; lines: [string, string][] }[] }
function parseDockerfile(text: string): Dockerfile {
  const stages: Dockerfile['stages'] = [];
  for (const line of text.replace(/\\\n\s*/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))) {
    const [, word = '', rest = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    if (word.toUpperCase() === 'FROM') stages.push({ from: rest, lines: [] });
    else stages.at(-1)?.lines.push([word.toUpperCase(), rest]);
  }
  return { stages };
}
const jsonArray = (text: string | undefined): string[] | undefined => {
  try {
    const value: unknown = JSON.parse(text ?? '');
    return Array.isArray(value) && value.every((v) => typeof v === 'string') ? value : undefined;
  } catch {
    return undefined;
  }
};
const finalStage = (d: Dockerfile): [string, string][] => d.stages.at(-1)?.lines ?? [];
const imageEnv = (d: Dockerfile): Record<string, string> =>
  Object.fromEntries(finalStage(d).filter(([w]) => w === 'ENV').flatMap(([, rest]) => rest.split(/\s+/).map((kv) => kv.split('=', 2) as [string, string])));

/** Every repository file node/main.ts loads, and every package it imports (type-only imports included, to be safe). */
function runtimeImports(): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string): void => {
    if (files.has(file)) return;
    files.add(file);
    for (const { fileName: spec } of ts.preProcessFile(read(file), true, true).importedFiles) {
      if (spec.startsWith('.')) visit(relative(ROOT, resolve(ROOT, dirname(file), spec)));
      else if (!isBuiltin(spec)) packages.add(spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/'));
    }
  };
  visit('node/main.ts');
  return { files, packages };
}

function dockerfileProblems(text: string): string[] {
  const problems: string[] = [];
  const d = parseDockerfile(text);
  const last = finalStage(d);
  const all = (word: string): string[] => last.filter(([w]) => w === word).map(([, rest]) => rest);
  for (const stage of d.stages) if (!/^node:20-bookworm-slim(\s+AS\s+\S+)?$/i.test(stage.from)) problems.push(`FROM ${stage.from}: not node:20-bookworm-slim`);
  if (!d.stages.some((s) => s.lines.some(([w, rest]) => w === 'RUN' && rest.includes('--omit=dev')))) problems.push('no RUN with --omit=dev: devDependencies reach the image');
  const user = all('USER').at(-1);
  if (user === undefined || /^(root|0)(:|$)/.test(user)) problems.push(`the final stage runs as ${user ?? 'root (no USER)'}`);
  if (!/\/healthz\b/.test(all('HEALTHCHECK').join(' '))) problems.push('no HEALTHCHECK on /healthz');
  const entrypoint = jsonArray(all('ENTRYPOINT').at(-1));
  const cmd = all('CMD').length === 0 ? [] : jsonArray(all('CMD').at(-1));
  if (entrypoint?.[0] !== 'node' || cmd === undefined) problems.push('ENTRYPOINT must be exec form starting node (and CMD exec form), so node is PID 1 and gets SIGTERM');
  const env = imageEnv(d);
  checkNames(Object.keys(env), 'Dockerfile ENV', problems);
  const script = entrypoint?.indexOf('node/main.ts') ?? -1;
  if (script < 0 || entrypoint?.slice(1, script).join(' ') !== '--import tsx') problems.push('ENTRYPOINT does not run node --import tsx node/main.ts');
  const pkg = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
  const { files, packages } = runtimeImports();
  for (const name of [...packages, 'tsx']) if (pkg.dependencies[name] === undefined) problems.push(`the node imports ${name}, which is not a runtime dependency (pruned away)`);
  const copied = new Set(all('COPY').map((rest) => rest.split(/\s+/).at(-1)?.replace(/^\.\//, '').replace(/\/$/, '')));
  for (const top of new Set([...files].map((f) => f.split('/')[0]).concat('package.json', 'node_modules'))) {
    if (!copied.has(top)) problems.push(`the final stage does not COPY ${top}, which the node needs`);
  }
  const parsed = cli([...(entrypoint ?? []).slice(script + 1), ...(cmd ?? [])], { ...env, HITMESH_SECRET: 'placeholder-secret' }, 'Dockerfile', problems);
  if (parsed?.kind === 'run') {
    if (parsed.config.host !== '0.0.0.0') problems.push(`the image binds ${parsed.config.host}, not 0.0.0.0`);
    if (!all('EXPOSE').join(' ').split(/\s+/).includes(String(parsed.config.port))) problems.push(`EXPOSE does not list the port ${parsed.config.port}`);
    if (!all('VOLUME').join(' ').split(/[\s"[\],]+/).includes(parsed.config.dataDir)) problems.push(`the data dir ${parsed.config.dataDir} is not a VOLUME`);
  }
  return problems;
}

// ---- docker-compose.yml
/** Compose's ${VAR}, ${VAR:-default}, ${VAR:?message} interpolation. */
function interpolate(value: string, env: Record<string, string>, problems: string[]): string {
  return value.replace(/\$\{(\w+)(?::?([-?])([^}]*))?\}/g, (_m, name: string, op?: string, arg?: string) => {
    const set = env[name];
    if (set !== undefined && set !== '') return set;
    if (op === '?') problems.push(`compose: ${name} unset: ${arg ?? ''}`);
    return op === '-' ? (arg ?? '') : '';
  });
}
const seconds = (d: unknown): number => [...String(d).matchAll(/(\d+(?:\.\d+)?)(h|m|s|ms)/g)].reduce((s, [, n, u]) => s + Number(n) * { h: 3600, m: 60, s: 1, ms: 0.001 }[u as 'h'], 0);

interface ComposeService { build?: { context?: string; dockerfile?: string }; environment?: Record<string, unknown>; command?: string[]; ports?: string[]; volumes?: string[]; stop_grace_period?: string; healthcheck?: unknown }
function composeProblems(compose: { services?: Record<string, ComposeService>; volumes?: Record<string, unknown> }, imageEnvVars: Record<string, string>): string[] {
  const problems: string[] = [];
  const services = Object.entries(compose.services ?? {});
  if (services.map(([n]) => n).join() !== 'n1,n2,n3') problems.push(`compose services are ${services.map(([n]) => n).join()}, not n1,n2,n3`);
  for (const [name, s] of services) {
    const where = `compose ${name}`;
    const dockerfile = resolve(ROOT, 'deploy', s.build?.context ?? '.', s.build?.dockerfile ?? 'Dockerfile');
    if (resolve(ROOT, 'deploy', s.build?.context ?? '.') !== resolve(ROOT) || !existsSync(dockerfile)) problems.push(`${where}: build is not deploy/Dockerfile in the repository root`);
    if (s.healthcheck !== undefined) problems.push(`${where}: overrides the image's HEALTHCHECK`);
    if (!(seconds(s.stop_grace_period) > GRACE_S)) problems.push(`${where}: stop_grace_period ${s.stop_grace_period} is not above the node's ${GRACE_S} s grace`);
    const raw = Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, String(v)]));
    checkNames(Object.keys(raw), where, problems);
    for (const key of ['HITMESH_SECRET', 'HITMESH_API_TOKEN']) if (!new RegExp(`^\\$\\{${key}:\\?`).test(raw[key] ?? '')) problems.push(`${where}: ${key} is not a required \${${key}:?...}`);
    const given = { HITMESH_SECRET: 'placeholder-cluster-secret', HITMESH_API_TOKEN: 'placeholder-api-token-0123456789' };
    const env = { ...imageEnvVars, ...Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, interpolate(v, given, problems)])) };
    const parsed = cli(s.command ?? [], env, where, problems);
    if (parsed?.kind !== 'run') continue;
    const { config } = parsed;
    const others = services.map(([n]) => `${n}:${config.port}`).filter((a) => a !== `${name}:${config.port}`);
    if (config.id !== name || config.advertise !== `${name}:${config.port}`) problems.push(`${where}: id ${config.id} / advertise ${config.advertise} are not its service name`);
    if ([...config.peers].sort().join() !== others.join()) problems.push(`${where}: peers ${config.peers.join()} are not ${others.join()}`);
    if (config.secret === undefined || config.apiToken === undefined) problems.push(`${where}: runs without a secret or API token`);
    if (!(s.ports ?? []).some((p) => p.split(':').at(-1) === String(config.port))) problems.push(`${where}: no published port goes to ${config.port}`);
    const mount = (s.volumes ?? []).map((v) => v.split(':')).find(([, target]) => target === config.dataDir);
    if (mount?.[0] === undefined || !(mount[0] in (compose.volumes ?? {}))) problems.push(`${where}: ${config.dataDir} is not on a named volume`);
  }
  return problems;
}

// ---- deploy/k8s
function k8sProblems(files: Map<string, Obj[]>, image: Record<string, string>, hasRoute: (path: string) => boolean): string[] {
  const problems: string[] = [];
  const objects = [...files.values()].flat();
  const kustomization = objects.find((o) => o.kind === 'Kustomization') as { resources?: unknown; images?: { name?: string }[] } | undefined;
  const listed = Array.isArray(kustomization?.resources) ? kustomization.resources : [];
  for (const file of files.keys()) {
    if (file !== 'kustomization.yaml' && listed.includes(file) === UNLISTED.has(file)) problems.push(`kustomization.yaml: ${file} ${UNLISTED.has(file) ? 'is listed though it must not be' : 'is not listed'}`);
  }
  for (const r of listed) if (typeof r !== 'string' || !files.has(r)) problems.push(`kustomization.yaml lists a missing ${String(r)}`);
  for (const obj of objects) {
    const model = MODELS[`${obj.apiVersion} ${obj.kind}`];
    if (model === undefined) continue;
    try {
      new model(obj as never).validate();
    } catch (error) {
      problems.push(`${obj.kind} ${obj.metadata?.name}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  const of = <T>(kind: string): T[] => objects.filter((o) => o.kind === kind) as T[];
  const [sts] = of<IStatefulSet>('StatefulSet');
  const [secret] = of<ISecret>('Secret');
  const services = of<IService>('Service');
  const headless = services.find((s) => s.spec?.clusterIP === 'None');
  const pod = sts?.spec?.template;
  const c = pod?.spec?.containers[0];
  if (sts?.spec === undefined || pod?.spec === undefined || c === undefined || secret === undefined || headless?.spec === undefined) return [...problems, 'missing a StatefulSet with a container, a Secret or a headless Service'];
  if (!(kustomization?.images ?? []).some((i) => i.name === c.image)) problems.push(`kustomization.yaml: no images entry for ${c.image}`);
  const labels = pod.metadata?.labels ?? {};
  const port = c.ports?.[0]?.containerPort;
  const portOf = (p: number | string | undefined): number | undefined => (typeof p === 'number' ? p : c.ports?.find((x) => x.name === p)?.containerPort);
  const s = sts.spec;
  if (s.replicas !== 3 || s.podManagementPolicy !== 'Parallel') problems.push('StatefulSet: not 3 replicas with podManagementPolicy Parallel');
  if (s.serviceName !== headless.metadata?.name || headless.spec.publishNotReadyAddresses !== true) problems.push(`serviceName ${s.serviceName} is not the headless Service publishing not-ready pods`);
  // The preStop wait runs before SIGTERM and counts against the same grace period.
  const preStop = c.lifecycle?.preStop?.exec?.command;
  const preStopS = preStop?.[0] === 'sleep' ? Number(preStop[1]) : 0;
  if (!((pod.spec.terminationGracePeriodSeconds ?? 30) > GRACE_S + preStopS)) problems.push(`terminationGracePeriodSeconds is not above the preStop wait (${preStopS} s) and the node's ${GRACE_S} s grace`);
  const selectors: [string, Record<string, string> | undefined][] = [
    ['StatefulSet', s.selector.matchLabels],
    ...services.map((x): [string, Record<string, string> | undefined] => [`Service ${x.metadata?.name}`, x.spec?.selector]),
    ...of<IPodDisruptionBudget>('PodDisruptionBudget').map((p): [string, Record<string, string> | undefined] => ['PodDisruptionBudget', p.spec?.selector?.matchLabels]),
  ];
  for (const [what, selector] of selectors) {
    if (!selects(selector, labels)) problems.push(`${what}: selector does not match the pod labels`);
  }
  for (const svc of services) for (const p of svc.spec?.ports ?? []) if (portOf(p.targetPort) !== port) problems.push(`Service ${svc.metadata?.name}: targetPort ${p.targetPort} is not the container port ${port}`);
  for (const [probe, path] of [[c.readinessProbe, '/readyz'], [c.livenessProbe, '/healthz'], [c.startupProbe ?? c.livenessProbe, '/healthz']] as const) {
    if (probe?.httpGet?.path !== path || portOf(probe.httpGet.port) !== port || !hasRoute(path)) problems.push(`probe ${probe?.httpGet?.path} on ${probe?.httpGet?.port}: wanted ${path} on ${port}`);
  }
  const ann = pod.metadata?.annotations ?? {};
  if (Number(ann['prometheus.io/port']) !== port || !hasRoute(ann['prometheus.io/path'] ?? '')) problems.push('prometheus.io annotations are not the container port and /metrics');
  const sec = pod.spec.securityContext;
  if (sec?.runAsNonRoot !== true || sec.runAsUser !== 1000) problems.push('the pod does not run as non-root uid 1000 (the image\'s node user)');
  const mounts = c.volumeMounts ?? [];
  const tmp = pod.spec.volumes?.find((v) => v.emptyDir !== undefined && mounts.some((m) => m.name === v.name && m.mountPath === '/tmp'));
  if (c.securityContext?.readOnlyRootFilesystem === true && tmp === undefined) problems.push('read-only root without a writable /tmp: tsx cannot start');

  // The environment the pod would have: the image's, then the container's, with $(VAR) as Kubernetes expands it.
  const env: Record<string, string> = { ...image };
  const secretData = { ...secret.stringData, ...Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()])) };
  checkNames((c.env ?? []).map((e) => e.name), 'StatefulSet env', problems);
  for (const e of c.env ?? []) {
    const ref = e.valueFrom?.secretKeyRef;
    const field = e.valueFrom?.fieldRef?.fieldPath;
    if (ref !== undefined && (ref.name !== secret.metadata?.name || secretData[ref.key] === undefined)) problems.push(`${e.name}: secretKeyRef ${ref.name}/${ref.key} is not in the Secret`);
    if (field !== undefined && FIELDS[field] === undefined) problems.push(`${e.name}: unexpected fieldRef ${field}`);
    const value = (e.value ?? '').replace(/\$\$|\$\(([A-Za-z_]\w*)\)/g, (m, name?: string) => (m === '$$' ? '$' : name !== undefined && env[name] !== undefined ? env[name] : m));
    if (/\$\(/.test(value)) problems.push(`${e.name}: ${e.value} refers to a variable not defined before it`);
    env[e.name] = ref !== undefined ? generated(secretData[ref.key]) : field !== undefined ? (FIELDS[field] ?? '') : value;
  }
  for (const name of K8S_ONLY) if (!(c.env ?? []).some((e) => e.value?.includes(`$(${name})`))) problems.push(`${name} is set but never used`);
  const parsed = cli(c.args ?? [], env, 'StatefulSet', problems);
  if (parsed?.kind === 'run') {
    const { config } = parsed;
    const data = mounts.find((m) => m.mountPath === config.dataDir);
    if (config.port !== port) problems.push(`the node listens on ${config.port}, the container port is ${port}`);
    const wanted = `0.0.0.0 ${FIELDS['metadata.name']} ${FIELDS['status.podIP']}:${port}`;
    if (`${config.host} ${config.id} ${config.advertise}` !== wanted) problems.push(`host, id, advertise are ${config.host} ${config.id} ${config.advertise}, not ${wanted}`);
    if (config.peersDns?.replace(/\.:(\d+)$/, ':$1') !== `${headless.metadata?.name}.${FIELDS['metadata.namespace']}.svc.cluster.local:${port}`) problems.push(`peers-dns ${config.peersDns} does not name the headless Service on ${port}`);
    if (config.secret === undefined || config.apiToken === undefined) problems.push('the pod runs without a secret or API token');
    if (data === undefined || !(s.volumeClaimTemplates ?? []).some((t) => t.metadata?.name === data.name)) problems.push(`${config.dataDir} is not on a volumeClaimTemplate`);
  }

  const [monitor] = of<ServiceMonitor>('ServiceMonitor');
  const scraped = services.filter((svc) => selects(monitor?.spec?.selector?.matchLabels, svc.metadata?.labels ?? {}));
  const endpoint = monitor?.spec?.endpoints?.[0];
  const auth = endpoint?.authorization;
  if (scraped.length !== 1 || !scraped[0]?.spec?.ports?.some((p) => p.name === endpoint?.port)) problems.push('ServiceMonitor: does not select one Service by labels and a named port of it');
  if (!hasRoute(endpoint?.path ?? '')) problems.push(`ServiceMonitor: path ${endpoint?.path} is not a route`);
  if (auth?.type !== 'Bearer' || auth.credentials?.name !== secret.metadata?.name || secretData[auth.credentials?.key ?? ''] === undefined) problems.push('ServiceMonitor: no bearer token from the Secret');
  return problems;
}

/** What `kubectl create secret` puts where the example has a placeholder (the node refuses the placeholder itself). */
function generated(value: string | undefined): string {
  return value?.startsWith('REPLACE-ME') === true ? 'f3a1'.repeat(16) : (value ?? '');
}

describe('deploy/', () => {
  let node: RunningNode;
  let dir: string;
  const files = loadK8s();
  const dockerfile = read('deploy/Dockerfile');
  const compose = parseYaml(read('deploy/docker-compose.yml'), 'docker-compose.yml')[0] as Parameters<typeof composeProblems>[0];
  const image = imageEnv(parseDockerfile(dockerfile));
  const example = (files.get('secret.example.yaml')?.[0]?.stringData ?? {}) as Record<string, string>;
  const token = generated(example['api-token']);
  const hasRoute = (path: string): boolean => node.app.hasRoute({ method: 'GET', url: path });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hitmesh-deploy-'));
    const parsed = parseCli(['--id', 'probe', '--port', '0', '--data', join(dir, 'probe'), '--api-token', token, '--log-level', 'silent'], {});
    if (parsed.kind !== 'run') throw new Error('expected a run config');
    node = await startNode(parsed.config, { shutdownGraceMs: 1_000 });
  });
  afterAll(async () => {
    await node.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('the Dockerfile: slim node 20, no devDependencies, non-root, /healthz check, node as PID 1, what the node needs copied', () => {
    expect(dockerfileProblems(dockerfile)).toEqual([]);
  });

  it('docker-compose.yml: three nodes seeded with each other, secrets required, flags the node accepts', () => {
    expect(composeProblems(compose, image)).toEqual([]);
  });

  it('deploy/k8s: every object valid for its schema and tied to the others and to the node', () => {
    expect(GRACE_S).toBe(10);
    expect(k8sProblems(files, image, hasRoute)).toEqual([]);
  });

  it('the probes answer 200 with no token; /metrics, which the ServiceMonitor scrapes, needs the one in the Secret', async () => {
    for (const path of ['/healthz', '/readyz']) expect((await fetch(`${node.url}${path}`)).status, path).toBe(200);
    expect((await fetch(`${node.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${node.url}/metrics`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
  });

  it("the example Secret's placeholders do not start a node: applied unchanged, they would be a public token", () => {
    for (const [flag, key] of [['--secret', 'secret'], ['--api-token', 'api-token']] as const) {
      expect(example[key], key).toMatch(/^REPLACE-ME/);
      expect(() => parseCli(['--id', 'x', '--port', '0', flag, example[key] ?? ''], {}), flag).toThrow(/placeholder/);
    }
  });

  it('each check fails on a copy broken on purpose', () => {
    const edited = <T>(file: string, edit: (o: T) => void): string[] => {
      const copy = structuredClone(files);
      edit(copy.get(file)?.[0] as T);
      return k8sProblems(copy, image, hasRoute);
    };
    const broken = (edit: (sts: IStatefulSet) => void): string[] => edited('statefulset.yaml', edit);
    const container = (sts: IStatefulSet) => sts.spec?.template.spec?.containers[0] ?? { name: 'missing' };
    expect(broken((s) => { const probe = container(s).readinessProbe?.httpGet; if (probe) probe.path = '/ready'; })).toEqual([expect.stringMatching(/probe \/ready on http: wanted \/readyz/)]);
    expect(broken((s) => { const p = container(s).ports?.[0]; if (p) p.containerPort = 8080; }).join('\n')).toMatch(/the node listens on 7001, the container port is 8080/);
    expect(broken((s) => container(s).env?.push({ name: 'HITMESH_PEER', value: 'x:1' }))).toEqual(['StatefulSet env: HITMESH_PEER is not a variable the node reads']);
    expect(broken((s) => { if (s.spec) s.spec.replicas = 'three' as unknown as number; }).join('\n')).toMatch(/spec\/replicas must be integer/);
    expect(broken((s) => { if (s.spec?.template.spec) s.spec.template.spec.terminationGracePeriodSeconds = 5; }).join('\n')).toMatch(/terminationGracePeriodSeconds/);
    expect(broken((s) => { if (s.spec?.template.spec) s.spec.template.spec.terminationGracePeriodSeconds = 12; }).join('\n')).toMatch(/preStop wait \(5 s\)/);
    expect(broken((s) => { if (s.spec?.template.spec) s.spec.template.spec.terminationGracePeriodSeconds = 12; }).join('\n')).toMatch(/preStop wait \(5 s\)/);
    expect(broken((s) => { const e = container(s).env?.find((x) => x.name === 'HITMESH_API_TOKEN'); if (e?.valueFrom?.secretKeyRef) e.valueFrom.secretKeyRef.key = 'token'; }).join('\n')).toMatch(/secretKeyRef hitmesh\/token/);
    expect(broken((s) => { const e = container(s).env?.find((x) => x.name === 'HITMESH_PEERS_DNS'); if (e) e.value = 'hitmesh.$(POD_NAMESPACE).svc.cluster.local:7001'; }).join('\n')).toMatch(/peers-dns .* does not name the headless Service/);
    expect(broken((s) => { if (s.spec) s.spec.serviceName = 'hitmesh'; }).join('\n')).toMatch(/serviceName hitmesh/);
    expect(edited<IService>('service.yaml', (svc) => { const p = svc.spec?.ports?.[0]; if (p) p.targetPort = 7002; })).toEqual(['Service hitmesh: targetPort 7002 is not the container port 7001']);
    expect(edited<ServiceMonitor>('servicemonitor.yaml', (m) => { const c = m.spec?.endpoints?.[0]?.authorization?.credentials; if (c) c.key = 'token'; })).toEqual(['ServiceMonitor: no bearer token from the Secret']);

    const composeCopy = structuredClone(compose);
    const n2 = composeCopy.services?.n2;
    if (n2) n2.command = ['--peers', 'n1:7001'];
    if (n2?.environment) n2.environment.HITMESH_SECRETS = 'x';
    expect(composeProblems(composeCopy, image).join('\n')).toMatch(/HITMESH_SECRETS is not a variable[^]*peers n1:7001 are not n1:7001,n3:7001/);

    expect(dockerfileProblems(dockerfile.replace('USER node', 'USER root').replace('npm prune --omit=dev', 'true').replace('ENTRYPOINT ["node", ', 'ENTRYPOINT node '))).toEqual([
      'no RUN with --omit=dev: devDependencies reach the image',
      'the final stage runs as root',
      'ENTRYPOINT must be exec form starting node (and CMD exec form), so node is PID 1 and gets SIGTERM',
      'ENTRYPOINT does not run node --import tsx node/main.ts',
    ]);
    expect(dockerfileProblems(dockerfile.replaceAll('/healthz', '/health').replace('COPY --from=build /app/gossip ./gossip', '').replace('HITMESH_DATA=', 'HITMESH_DATADIR='))).toEqual([
      'no HEALTHCHECK on /healthz',
      'Dockerfile ENV: HITMESH_DATADIR is not a variable the node reads',
      'the final stage does not COPY gossip, which the node needs',
      expect.stringMatching(/^the data dir \.\/data\/\S+ is not a VOLUME$/),
    ]);
  });
});
