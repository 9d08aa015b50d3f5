/**
 * Command-line argument handling of every command with a variadic or
 * optional positional and of every option (src/cli/args.ts): `verify`
 * checks all its files and prints one JSON document; a repeated option
 * takes its last value; an option spelled like a positional argument and
 * extra arguments are usage errors.
 *
 * The CLI runs for real but never reaches any state: every invocation that
 * gets past argument checks fails on --bpffs, which names a plain
 * directory, or on a missing file.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { jsonRequested, lastValueWins, positionalNames } from '../../src/cli/args.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const BIN = path.join(ROOT, 'bin', 'manifold');
const NOT_BPF = fs.mkdtempSync(path.join(os.tmpdir(), 'manifold-cli-args-'));
process.umask(0o022);
process.once('exit', () => fs.rmSync(NOT_BPF, { recursive: true, force: true }));
const NOT_BPF_ERROR = `--bpffs ${NOT_BPF}: not a bpf filesystem`;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the CLI as given (no options added). */
function raw(args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const r = spawnSync(BIN, args, {
    encoding: 'utf8',
    env: { ...process.env, MANIFOLD_JOURNAL: '0', MANIFOLD_CONFIG_DIRS: path.join(NOT_BPF, 'none'), ...env },
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Run the CLI with --bpffs pointing at a plain directory first (a later --bpffs wins). */
function cli(args: string[], env: NodeJS.ProcessEnv = {}): Run {
  return raw(['--bpffs', NOT_BPF, ...args], env);
}

/** Run the CLI (as `cli` does) on each argument list, a few at a time; results in order. */
async function cliMany(lists: string[][], env: NodeJS.ProcessEnv = {}): Promise<Run[]> {
  const results: Run[] = new Array<Run>(lists.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < lists.length) {
      const i = next++;
      results[i] = await new Promise<Run>((resolve, reject) => {
        const child = spawn(BIN, ['--bpffs', NOT_BPF, ...(lists[i] as string[])], {
          env: { ...process.env, MANIFOLD_JOURNAL: '0', MANIFOLD_CONFIG_DIRS: path.join(NOT_BPF, 'none'), ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
        child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
        const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
        child.once('error', reject);
        child.once('close', (code) => {
          clearTimeout(timer);
          resolve({ code, stdout, stderr });
        });
      });
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return results;
}

function usage(r: Run, re: RegExp | string, what: string): void {
  assert.is(r.code, 2, `${what}: exit ${r.code}: ${r.stderr}`);
  assert.match(r.stderr, re, what);
}

function conf(name: string, text: string): string {
  const f = path.join(NOT_BPF, name);
  fs.writeFileSync(f, text, { mode: 0o644 });
  return f;
}

// ---------------------------------------------------------------- pure helpers

test('positionalNames reads yargs command strings', () => {
  assert.equal(positionalNames('bind <label> <protocol> <prefix> <port>'), ['label', 'protocol', 'prefix', 'port']);
  assert.equal(positionalNames('verify [files..]'), ['files']);
  assert.equal(positionalNames('metrics [address] [port]'), ['address', 'port']);
  assert.equal(positionalNames('x <a|b> [c...]'), ['a', 'b', 'c']);
  assert.equal(positionalNames('version'), []);
});

test('jsonRequested: the last of --json, --json=BOOL, --no-json before --', () => {
  assert.is(jsonRequested(['status']), false);
  assert.is(jsonRequested(['status', '--json']), true);
  assert.is(jsonRequested(['--json', 'status', '--no-json']), false);
  assert.is(jsonRequested(['--no-json', '--json']), true);
  assert.is(jsonRequested(['--json=false']), false);
  assert.is(jsonRequested(['--json=true']), true);
  assert.is(jsonRequested(['verify', '--', '--json']), false);
});

test('lastValueWins keeps declared arrays', () => {
  const argv: Record<string, unknown> = { _: ['a', 'b'], netns: ['/a', '/b'], 'lock-timeout': [1, 2], lockTimeout: [1, 2], files: ['x', 'y'], json: true };
  lastValueWins(argv, ['files']);
  assert.equal(argv, { _: ['a', 'b'], netns: '/b', 'lock-timeout': 2, lockTimeout: 2, files: ['x', 'y'], json: true });
});

// ---------------------------------------------------------------- verify [files..]

test('verify checks every file: a broken first or last file fails', () => {
  const good = conf('good.conf', '[Label]\nBind=tcp 10.0.0.0/8 80\n');
  const other = conf('other.conf', '[Label]\nBind=tcp 10.1.0.0/16 80\n');
  const broken = conf('broken.conf', '[Label]\nBind=nonsense\n');
  for (const files of [[broken, good], [good, broken], [good, broken, other], [broken, good, other]]) {
    const r = cli(['verify', ...files]);
    assert.is(r.code, 1, `${files.map((f) => path.basename(f)).join(' ')}: ${r.stderr}`);
    assert.match(r.stdout, `${broken}:2: Bind= expects`);
  }
  const ok = cli(['verify', good, other]);
  assert.is(ok.code, 0, ok.stderr);
  // Both files are read: a conflict between them is found.
  const clash = conf('clash.conf', '[Label]\nBind=tcp 10.0.0.0/8 80\n');
  const r = cli(['verify', good, other, clash]);
  assert.is(r.code, 1);
  assert.match(r.stdout, `${clash}:2: Bind= tcp 10.0.0.0/8 80 conflicts with tcp 10.0.0.0/8 80 of label "good"`);
});

test('verify: the same path given twice is checked once', () => {
  const good = conf('good.conf', '[Label]\nBind=tcp 10.0.0.0/8 80\n');
  const r = cli(['verify', good, good, path.relative(process.cwd(), good)]);
  assert.is(r.code, 0, r.stderr);
});

test('verify --json prints exactly one document, with the error when it fails', () => {
  const good = conf('good.conf', '[Label]\nBind=tcp 10.0.0.0/8 80\n');
  const broken = conf('broken.conf', '[Label]\nBind=nonsense\n');
  const bad = cli(['verify', broken, good, path.join(NOT_BPF, 'missing.conf'), '--json']);
  assert.is(bad.code, 1);
  const doc = JSON.parse(bad.stdout) as { ok: boolean; problems: { file: string }[]; error: { code: string } };
  assert.is(doc.ok, false);
  assert.equal(doc.problems.map((p) => path.basename(p.file)), ['missing.conf', 'broken.conf']);
  assert.is(doc.error.code, 'ERR_INVALID_CONFIG');
  const ok = cli(['verify', good, '--json']);
  assert.is(ok.code, 0, ok.stderr);
  assert.equal(JSON.parse(ok.stdout), { ok: true, problems: [] });
});

test('verify without files checks the config directories; -- ends options', () => {
  const dir = path.join(NOT_BPF, 'confdir');
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'x.conf'), '[Label]\nNope=1\n', { mode: 0o644 });
  const r = cli(['verify'], { MANIFOLD_CONFIG_DIRS: dir });
  assert.is(r.code, 1);
  assert.match(r.stdout, /x\.conf:2: unknown key Nope=/);
  const dashed = conf('-dash.conf', '[Label]\nName=dash\n');
  const d = cli(['verify', '--', dashed]);
  assert.is(d.code, 0, d.stderr);
});

// ---------------------------------------------------------------- repeated options: the last one wins

test('global options: the last --netns, --bpffs, --lock-timeout and --json win', () => {
  const n = raw(['status', '--netns', '/nonexistent-1', '--netns', '/nonexistent-2']);
  usage(n, '--netns /nonexistent-2: no such file', '--netns twice');
  assert.not.match(n.stderr, 'nonexistent-1');
  usage(raw(['status', '--netns', '/nonexistent-1', '--netns', '/proc/self/ns/net', '--bpffs', '/nonexistent-b1', '--bpffs', '/nonexistent-b2']), '--bpffs /nonexistent-b2: no such file', '--bpffs twice');
  usage(cli(['status', '--lock-timeout', '1', '--lock-timeout', '7200']), 'invalid --lock-timeout "7200"', '--lock-timeout twice');
  // yargs' number parsing would add the two up (7201) when the last value is 1.
  usage(cli(['status', '--lock-timeout', '7200', '--lock-timeout', '1']), NOT_BPF_ERROR, 'the valid --lock-timeout wins');
  usage(cli(['status', '--lock-timeout=7200', '--lock-timeout=1']), NOT_BPF_ERROR, 'the valid --lock-timeout= wins');
  assert.is(cli(['status', '--json', '--no-json']).stdout, '');
  assert.ok(JSON.parse(cli(['status', '--no-json', '--json']).stdout));
  assert.ok(JSON.parse(cli(['status', '--json', '--json']).stdout), 'one document');
});

test('--lock-timeout and MANIFOLD_LOCK_TIMEOUT: plain decimal seconds from 0 to 3600', async () => {
  const good = ['0', '1', '0.5', '3600', '10.125'];
  (await cliMany(good.map((ok) => ['status', '--lock-timeout', ok]))).forEach((r, i) => usage(r, NOT_BPF_ERROR, good[i] as string));
  const bad = ['1e3', '0x10', '', ' 5', '3600.5', 'Infinity', 'NaN', '1.2345', '-1'];
  (await cliMany(bad.map((b) => ['status', `--lock-timeout=${b}`]))).forEach((r, i) => usage(r, `invalid --lock-timeout ${JSON.stringify(bad[i])}`, JSON.stringify(bad[i])));
  const env = cli(['status', '--json'], { MANIFOLD_LOCK_TIMEOUT: '1e3' });
  usage(env, 'invalid MANIFOLD_LOCK_TIMEOUT "1e3"', 'environment');
  assert.is((JSON.parse(env.stdout) as { error: { code: string } }).error.code, 'ERR_INVALID_ENV');
  usage(cli(['status', '--lock-timeout', '2'], { MANIFOLD_LOCK_TIMEOUT: 'bad' }), NOT_BPF_ERROR, 'the option overrides the environment');
});

test('bindings: the last --label, --protocol, --prefix and --port win', async () => {
  const pairs: Array<[string, string, string, RegExp]> = [
    ['--label', 'bad label', 'good', /invalid label/],
    ['--protocol', 'sctp', 'tcp', /invalid protocol/],
    ['--prefix', '300.0.0.0/8', '10.0.0.0/8', /invalid/],
    ['--port', '99999', '80', /invalid (--)?port/],
  ];
  const runs = await cliMany(pairs.flatMap(([opt, bad, good]) => [['bindings', opt, good, opt, bad], ['bindings', opt, bad, opt, good]]));
  pairs.forEach(([opt, bad, good, err], i) => {
    usage(runs[2 * i] as Run, err, `${opt} ${good} ${opt} ${bad}`);
    usage(runs[2 * i + 1] as Run, NOT_BPF_ERROR, `${opt} ${bad} ${opt} ${good}`);
  });
});

test('load --group: the last one wins', () => {
  const r = cli(['load', '--group', 'no-such-group-1', '--group', 'no-such-group-2']);
  usage(r, 'invalid --group "no-such-group-2"', 'two groups');
  usage(cli(['load', '--group', 'no-such-group-1', '--group', '0']), NOT_BPF_ERROR, 'a valid group last');
  // (gid_t)-1 would mean "leave the group alone" to chown(2).
  usage(cli(['load', '--group', '4294967295']), 'invalid --group 4294967295: group ids go up to 4294967294', '(gid_t)-1');
  usage(cli(['load', '--group', '99999999999999999999']), 'group ids go up to 4294967294', 'huge');
  usage(cli(['load', '--group', '4294967294']), NOT_BPF_ERROR, 'the largest gid');
});

test('apply: booleans take their last value; a file and --config conflict', () => {
  const missing = path.join(NOT_BPF, 'missing.json');
  const a = cli(['apply', missing, '--config', '--no-config']);
  assert.is(a.code, 1, a.stderr);
  assert.match(a.stderr, 'missing.json');
  usage(cli(['apply', missing, '--no-config', '--config']), 'give either a file or --config, not both', 'file and --config');
  usage(cli(['load-bindings', missing, '--config']), 'give either a file or --config, not both', 'alias');
  usage(cli(['apply', '--config', '--dry-run', '--no-dry-run', '--skip-invalid', '--skip-invalid']), NOT_BPF_ERROR, 'apply --config');
});

test('a lone "-" is an argument (standard input), not an option without a name', () => {
  // Read to its end, then the state is opened (and fails on --bpffs): yargs alone would give "" here.
  for (const args of [['apply', '-'], ['apply', '--dry-run', '-'], ['load-bindings', '-', '--json']]) {
    const r = spawnSync(BIN, ['--bpffs', NOT_BPF, ...args], { encoding: 'utf8', input: '{"bindings":[]}', env: { ...process.env, MANIFOLD_JOURNAL: '0' }, timeout: 60_000 });
    assert.is(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, NOT_BPF_ERROR, args.join(' '));
  }
  const named = cli(['apply', path.join(NOT_BPF, '-')]);
  assert.match(named.stderr, `cannot read ${path.join(NOT_BPF, '-')}: no such file`, 'a file named "-" is given with its path');
});

test('an option that takes a value and is given none is a usage error, not its default', () => {
  usage(raw(['status', '--netns', '--bpffs', NOT_BPF]), '--netns needs a value (it is followed by --bpffs)', '--netns then another option');
  usage(cli(['status', '--netns']), '--netns needs a value', '--netns last');
  usage(raw(['bind', 'web', 'tcp', '192.0.2.1', '80', '--bpffs']), '--bpffs needs a value', '--bpffs last');
  usage(cli(['status', '--lock-timeout', '--json']), '--lock-timeout needs a value', 'a global option');
  usage(cli(['bindings', '--label', '--json']), '--label needs a value', "a command's option");
  usage(cli(['status', '--lock-timeout', '-1']), 'invalid --lock-timeout "-1"', 'a negative number is a value');
});

test('a flag takes no value but =true or =false: --dry-run=1 is a usage error, not a real apply', () => {
  const missing = path.join(NOT_BPF, 'missing.json');
  for (const v of ['1', 'yes', 'on', 'TRUE', '']) {
    usage(cli(['apply', `--dry-run=${v}`, missing]), '--dry-run is a flag: give it alone, or =true or =false', `--dry-run=${v}`);
  }
  usage(cli(['--json=maybe', 'status']), '--json is a flag', '--json=maybe');
  usage(cli(['bind', 'web', 'tcp', '0.0.0.0/0', '80', '--force=yes']), '--force is a flag', '--force=yes');
  for (const v of ['true', 'false']) {
    const r = cli(['apply', `--dry-run=${v}`, missing]);
    assert.is(r.code, 1, `--dry-run=${v}: ${r.stderr}`);
    assert.match(r.stderr, 'missing.json', `--dry-run=${v} is read`);
  }
});

test('-- ends the options: what follows fills the positional arguments, even when it starts with -', () => {
  usage(cli(['bind', '--', 'web', 'tcp', '192.0.2.1', '80']), NOT_BPF_ERROR, 'bind -- four arguments');
  usage(cli(['bind', '--', '-x', 'tcp', '192.0.2.1', '80']), 'invalid label: label "-x"', 'a label after -- that starts with -');
  usage(cli(['bindings', '--', 'tcp', '::/0', '80', 'extra']), 'unexpected argument "extra"', 'bindings -- tcp ::/0 80 extra');
  usage(cli(['lookup', '--', 'tcp', '192.0.2.1', '80']), NOT_BPF_ERROR, 'lookup --');
  usage(cli(['bind', 'web', '--', 'tcp', '192.0.2.1', '--json']), 'invalid port', '--json after -- is the port, not the flag');
});

// ---------------------------------------------------------------- ambiguity: positional names as options, extra arguments

test('an option spelled like a positional argument is a usage error, for every command', async () => {
  const cases: Array<[string[], string]> = [
    [['bind', 'web', 'tcp', '192.0.2.1', '80', '--label', 'evil'], 'label'],
    [['bind', 'web', 'tcp', '192.0.2.1', '80', '--port=81'], 'port'],
    [['bind', 'web', 'tcp', '192.0.2.1', '80', '--prefix', '10.0.0.0/8'], 'prefix'],
    [['bind', 'web', 'tcp', '192.0.2.1', '80', '--protocol', 'udp'], 'protocol'],
    [['unbind', 'web', 'tcp', '192.0.2.1', '80', '--label', 'evil'], 'label'],
    [['status', 'web', '--label', 'other'], 'label'],
    [['status', '--label', 'other'], 'label'],
    [['apply', '--file', 'x.json'], 'file'],
    [['load-bindings', 'a.json', '--file', 'x.json'], 'file'],
    [['register', '--label', 'web'], 'label'],
    [['register-pid', '1', 'web', 'tcp', '127.0.0.1', '80', '--pid', '2'], 'pid'],
    [['register-pid', '1', 'web', 'tcp', '127.0.0.1', '80', '--ip', '127.0.0.2'], 'ip'],
    [['unregister', 'web', 'ipv4', 'tcp', '--domain', 'ipv6'], 'domain'],
    [['verify', 'a.conf', '--files', 'b.conf'], 'files'],
    [['metrics', '127.0.0.1', '--port', '9000'], 'port'],
    [['metrics', '--address', '127.0.0.1'], 'address'],
  ];
  const runs = await cliMany(cases.map(([args]) => [...args, '--json']));
  for (const [i, [args, name]] of cases.entries()) {
    const r = runs[i] as Run;
    usage(r, `is not an option of this command: give the ${name} as an argument`, args.join(' '));
    assert.is((JSON.parse(r.stdout) as { error: { code: string } }).error.code, 'ERR_USAGE');
  }
});

test('extra or missing positional arguments are usage errors', async () => {
  const cases: string[][] = [
    ['bind', 'web', 'tcp', '192.0.2.1', '80', 'extra'],
    ['bind', 'web', 'tcp', '192.0.2.1'],
    ['unbind', 'web', 'tcp', '192.0.2.1', '80', '81'],
    ['status', 'a', 'b'],
    ['apply', 'a.json', 'b.json'],
    ['register', 'a', 'b'],
    ['register-pid', '1', 'web', 'tcp', '127.0.0.1', '80', '81'],
    ['unregister', 'web', 'ipv4', 'tcp', 'udp'],
    ['metrics', '127.0.0.1', '9000', 'extra'],
    ['load', 'extra'],
    ['unload', 'extra'],
    ['upgrade', 'extra'],
    ['version', 'extra'],
    ['bindings', 'tcp', '::/0', '80', 'extra'],
    ['nonsense'],
    [],
  ];
  const runs = await cliMany(cases.map((args) => [...args, '--json']));
  for (const [i, args] of cases.entries()) {
    const r = runs[i] as Run;
    assert.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.is((JSON.parse(r.stdout) as { error: { code: string } }).error.code, 'ERR_USAGE', args.join(' '));
  }
});

test('load --max-destinations and --max-bindings: plain decimal digits only', () => {
  for (const v of ['0x10', '1e3', ' 8', 'abc', '-5', '8.0']) {
    usage(cli(['load', '--max-destinations', v]), `invalid --max-destinations ${JSON.stringify(v)}: expected a whole number in plain decimal digits`, `--max-destinations ${v}`);
  }
  usage(cli(['load', '--max-bindings=1e6']), 'invalid --max-bindings "1e6"', '--max-bindings=1e6');
  usage(cli(['load', '--max-destinations', '16']), NOT_BPF_ERROR, 'a plain number passes');
});

test('--bpffs that is not a directory is not offered a mount command', () => {
  const file = conf('plain-file', 'x');
  usage(cli(['status', '--bpffs', file]), `--bpffs ${file}: not a bpf filesystem (it is not even a directory: give the directory a bpffs is mounted on, e.g. /sys/fs/bpf)`, 'a regular file');
  usage(cli(['status']), `${NOT_BPF_ERROR} (mount one with: mount -t bpf bpf ${NOT_BPF})`, 'a directory');
});

test('untarget: a word that is neither ipv4, ipv6 nor an address says all three', () => {
  usage(cli(['untarget', 'base', 'bogus']), 'invalid target "bogus": expected ipv4, ipv6 or a target address', 'a word');
  usage(cli(['untarget', 'base', '10.0.0.300']), 'invalid address "10.0.0.300"', 'an address-like value keeps the address error');
  usage(cli(['untarget', 'base', 'IPv6']), NOT_BPF_ERROR, 'a keyword in any case');
});

test('a single port is a single port: ranges and junk say so, without suggesting a range', async () => {
  const runs = await cliMany([
    ['lookup', 'tcp', '192.0.2.1', '8000-8000'],
    ['lookup', 'tcp', '192.0.2.1', 'abc'],
    ['bindings', '--port', '80-81'],
    ['target', 'web', '127.0.0.9', '70000'],
    ['metrics', '127.0.0.1', '9000-9000'],
  ]);
  const want = ['invalid port "8000-8000": expected a single port, 0 to 65535', 'invalid port "abc": expected a single port, 0 to 65535', 'invalid port "80-81": expected a single port, 0 to 65535', 'invalid port "70000": expected a single port, 0 to 65535', 'invalid port "9000-9000": expected a single port, 0 to 65535'];
  runs.forEach((r, i) => {
    usage(r, want[i] as string, want[i] as string);
    assert.not.match(r.stderr, 'range such as');
  });
});

test.run();
