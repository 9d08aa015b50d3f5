/**
 * target, untarget, policy: address targets and the namespace's policy
 * (listener discovery, docs/discovery.md). Parse, one ops call, output.
 */
import type { CommandModule } from 'yargs';
import { validateLabel } from '../../core/labels.js';
import { parseAddress, parseDomain, parsePort, parseProtocolOrAny, quote, type Domain, type Protocol } from '../../core/net.js';
import { ManifoldError } from '../../errors.js';
import { readPolicy, removeTargets, setPolicy, setTargets, type TargetChange, type TargetResult, type UntargetRequest } from '../../ops/target.js';
import { withState } from '../../state/state.js';
import { emitEvent, Priority } from '../../log/events.js';
import { info, out, outJson } from '../output.js';
import { openOptions, type GlobalArgs } from '../context.js';
import { commandHelp } from '../help.js';

/** Arguments of target. */
export interface TargetArgs extends GlobalArgs {
  label: string;
  address: string;
  port?: string | undefined;
  protocol?: string | undefined;
}

/** Arguments of untarget. */
export interface UntargetArgs extends GlobalArgs {
  label: string;
  which?: string | undefined;
  protocol?: string | undefined;
}

/** Arguments of policy. */
export interface PolicyArgs extends GlobalArgs {
  name?: string | undefined;
  value?: string | undefined;
}

const NO_DISCOVERY = 'listener discovery is not enabled: traffic steered to a target is refused (and the explicit-first policy has no effect) until "manifold discovery enable"';

function protocolsOf(text: string | undefined): Protocol[] {
  const p = text === undefined ? null : parseProtocolOrAny(text);
  return p === null ? ['tcp', 'udp'] : [p];
}

function changeText(c: TargetChange): string {
  const where = c.port === null ? c.address : `${c.address} port ${c.port}`;
  if (c.action === 'removed') return `${c.destination} target ${where} removed`;
  const was = c.action === 'replaced' && c.previous ? ` (was ${c.previous})` : '';
  return `${c.destination} target=${where} ${c.action}${was}`;
}

function report(args: GlobalArgs, kind: 'target' | 'untarget', r: TargetResult): void {
  for (const c of r.changes) {
    if (c.action === 'unchanged') continue;
    emitEvent(kind, Priority.notice, kind === 'target' ? `${c.destination} served by address target ${c.port === null ? c.address : `${c.address} port ${c.port}`} (${c.action}${c.previous ? `, was ${c.previous}` : ''})` : `${c.destination}: address target ${c.address} removed`, {
      LABEL: c.label, DOMAIN: c.domain, PROTOCOL: c.protocol, TARGET_ADDRESS: c.address, TARGET_PORT: c.port ?? 0, ACTION: c.action, PREVIOUS: c.previous,
    });
  }
  if (args.json) outJson({ changes: r.changes, discovery: r.discovery });
  else for (const c of r.changes) out(changeText(c));
  if (!r.discovery && kind === 'target') info(`manifold: warning: ${NO_DISCOVERY}`);
}

/** `manifold target`. */
export const targetCommand: CommandModule<GlobalArgs, TargetArgs> = {
  command: 'target <label> <address> [port]',
  describe: 'Serve a label by whatever listens on ADDRESS (at the connection\'s port, or PORT) instead of a registered socket',
  builder: (y) =>
    commandHelp(
      y
        .positional('label', { type: 'string', demandOption: true, describe: 'label of the destination(s)' })
        .positional('address', { type: 'string', demandOption: true, describe: 'the address the daemon listens on (IPv4 or IPv6; its family picks the destinations)' })
        .positional('port', { type: 'string', describe: 'fixed port on ADDRESS (default: the connection\'s own port)' })
        .option('protocol', { type: 'string', describe: 'tcp, udp or any (default any: both destinations)' }),
      [
        ['target web 127.0.0.5', "label web's bindings go to whatever listens on 127.0.0.5 at the same port"],
        ['target dns fd00::53 53 --protocol udp', 'IPv6 UDP bindings of label dns go to [fd00::53]:53'],
      ],
    ),
  handler: (args) => {
    const label = validateLabel(args.label);
    const address = parseAddress(args.address, 'address');
    const port = args.port === undefined ? 0 : parsePort(args.port, 'port');
    if (args.port !== undefined && port === 0) throw new ManifoldError('ERR_INVALID_PORT', 'invalid port "0": leave the port out to use the connection\'s own port');
    const assignments = protocolsOf(args.protocol).map((protocol) => ({
      key: { label, domain: address.domain, protocol },
      target: { domain: address.domain, addr: address.addr, port },
    }));
    const r = withState(openOptions(args, true), (s) => setTargets(s.maps, assignments));
    report(args, 'target', r);
  },
};

function untargetRequest(args: UntargetArgs): UntargetRequest {
  const label = validateLabel(args.label);
  const req: UntargetRequest = { label };
  const protocol = args.protocol === undefined ? null : parseProtocolOrAny(args.protocol);
  if (protocol !== null) req.protocol = protocol;
  if (args.which !== undefined) {
    let domain: Domain | null = null;
    try {
      domain = parseDomain(args.which);
    } catch {
      domain = null;
    }
    if (domain) req.domain = domain;
    else {
      let a: ReturnType<typeof parseAddress>;
      try {
        a = parseAddress(args.which, 'address');
      } catch (err) {
        // Neither keyword nor address: say both were possible.
        if (err instanceof ManifoldError && !/[.:]/.test(args.which)) throw new ManifoldError(err.code, `invalid target ${quote(args.which)}: expected ipv4, ipv6 or a target address`);
        throw err;
      }
      req.domain = a.domain;
      req.addr = a.addr;
    }
  }
  return req;
}

/** `manifold untarget`. */
export const untargetCommand: CommandModule<GlobalArgs, UntargetArgs> = {
  command: 'untarget <label> [which]',
  describe: "Remove a label's address targets (its bindings then refuse traffic until a socket or target serves it)",
  builder: (y) =>
    commandHelp(
      y
        .positional('label', { type: 'string', demandOption: true, describe: 'label of the destination(s)' })
        .positional('which', { type: 'string', describe: 'ipv4, ipv6 or the target address (default: every target of the label)' })
        .option('protocol', { type: 'string', describe: 'tcp, udp or any (default any)' }),
      [
        ['untarget web', 'every address target of label web'],
        ['untarget web ipv6 --protocol tcp', 'only its IPv6 TCP target'],
      ],
    ),
  handler: (args) => {
    const req = untargetRequest(args);
    const r = withState(openOptions(args, true), (s) => removeTargets(s.maps, req));
    report(args, 'untarget', r);
  },
};

function parseSwitch(value: string | undefined): boolean {
  const v = (value ?? '').toLowerCase();
  if (['on', 'yes', 'true', '1'].includes(v)) return true;
  if (['off', 'no', 'false', '0'].includes(v)) return false;
  throw new ManifoldError('ERR_USAGE', `invalid value ${JSON.stringify(value ?? '')} for explicit-first: expected on or off`);
}

/** `manifold policy`. */
export const policyCommand: CommandModule<GlobalArgs, PolicyArgs> = {
  command: 'policy [name] [value]',
  describe: 'Show the namespace\'s policy, or set it: policy explicit-first on|off (explicit listeners win over bindings; needs listener discovery)',
  builder: (y) =>
    commandHelp(
      y
        .positional('name', { type: 'string', describe: 'explicit-first' })
        .positional('value', { type: 'string', describe: 'on or off' }),
      [
        ['policy', 'show the policy'],
        ['policy explicit-first on', 'a listener on the exact address and port wins over the bindings'],
      ],
    ),
  handler: (args) => {
    if (args.name === undefined) {
      const p = withState(openOptions(args, false), (s) => readPolicy(s.maps));
      if (args.json) outJson(p);
      else out(`explicit-first ${p.explicitFirst ? 'on' : 'off'}`);
      return;
    }
    if (args.name !== 'explicit-first') throw new ManifoldError('ERR_USAGE', `unknown policy ${JSON.stringify(args.name)}: expected explicit-first`);
    if (args.value === undefined) throw new ManifoldError('ERR_USAGE', 'give on or off: manifold policy explicit-first on|off');
    const explicitFirst = parseSwitch(args.value);
    const r = withState(openOptions(args, true), (s) => setPolicy(s.maps, { explicitFirst }));
    if (r.changed) {
      emitEvent('policy', Priority.notice, `policy explicit-first ${explicitFirst ? 'on' : 'off'}`, { POLICY: 'explicit-first', VALUE: explicitFirst ? 'on' : 'off' });
    }
    if (args.json) outJson({ ...r.policy, changed: r.changed, discovery: r.discovery });
    else out(`explicit-first ${explicitFirst ? 'on' : 'off'}${r.changed ? '' : ' (unchanged)'}`);
    if (explicitFirst && !r.discovery) info(`manifold: warning: ${NO_DISCOVERY}`);
  },
};
