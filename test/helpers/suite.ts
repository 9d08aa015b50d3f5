/**
 * Shared set-up for integration test files: one namespace + bpffs + agent
 * per file, always torn down.
 */
import { Agent } from './agent-client.js';
import { TestEnv } from './env.js';

/** Context of an integration test file. */
export interface Ctx {
  env: TestEnv;
  agent: Agent;
}

/** Create the environment and agent; `load` the dispatcher unless told not to. */
export async function setup(prefix: string, opts: { load?: boolean } = {}): Promise<Ctx> {
  const env = TestEnv.create(prefix);
  process.once('exit', () => env.destroy());
  try {
    const agent = await Agent.start(env);
    if (opts.load !== false) env.ok(['load']);
    return { env, agent };
  } catch (err) {
    env.destroy();
    throw err;
  }
}

/** Tear down. */
export function teardown(ctx: Ctx | undefined): void {
  if (!ctx) return;
  ctx.agent.stop();
  ctx.env.destroy();
}

/** Start a server in the agent and register it with register-pid. */
export async function serve(ctx: Ctx, label: string, proto: 'tcp' | 'udp', host: string, port: number, extra: Record<string, unknown> = {}): Promise<{ handle: number; fd: number; port: number; cookie: string }> {
  const s = await ctx.agent.listen(proto, host, port, label, extra);
  const r = ctx.env.ok(['register-pid', String(ctx.agent.pid), label, proto, host, String(s.port), '--json']);
  return { ...s, cookie: String((r.json as { cookie: string }).cookie) };
}

/** status --json of the environment. */
export interface StatusDoc {
  bindings: { label: string; protocol: string; prefix: string; port: number }[];
  destinations: { label: string; domain: string; protocol: string; socket: string | null; lookups: number; misses: number; errors: number; id: number; bindings: number }[];
}

/** Read status --json. */
export function status(ctx: Ctx): StatusDoc {
  return ctx.env.ok(['status', '--json']).json as StatusDoc;
}

/** Find a destination in a status document. */
export function dest(doc: StatusDoc, label: string, domain = 'ipv4', protocol = 'tcp'): StatusDoc['destinations'][number] | undefined {
  return doc.destinations.find((d) => d.label === label && d.domain === domain && d.protocol === protocol);
}
