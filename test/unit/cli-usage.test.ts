/**
 * Usage errors in manifold's words, through the real CLI: missing arguments
 * are named with a pointer to `manifold CMD --help`, unknown commands get
 * the closest match, tubectl-style single-dash options (`-netns`) get the
 * right spelling, extra arguments and unknown options are named, invalid
 * choices list the valid ones. All exit 2 with ERR_USAGE and change
 * nothing (no state is named that exists). A usage error goes to the
 * journal at priority notice (5), a real failure at err (3): checked with
 * stderr as the journal stream ($JOURNAL_STREAM naming fd 2, the `<N>`
 * prefix systemd parses). Plus the pure message functions.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { closestCommands, commandTable, editDistance, explainUsage, positionalWords, singleDashError } from '../../src/cli/usage.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const BIN = path.join(ROOT, 'bin', 'manifold');
const DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'manifold-usage-'));
process.once('exit', () => fs.rmSync(DIR, { recursive: true, force: true }));
/** Not a bpffs: any command that got past argument checks would fail differently (exit 1). */
const TARGET = ['--bpffs', DIR];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: NodeJS.ProcessEnv = { MANIFOLD_JOURNAL: '0' }): Run {
  const r = spawnSync(BIN, args, { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Exit 2, the message on stderr (and as ERR_USAGE in --json). */
function usage(args: string[], message: string | RegExp): void {
  const r = cli([...args, ...TARGET]);
  assert.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
  assert.is(r.stdout, '', 'nothing on stdout');
  assert.match(r.stderr, typeof message === 'string' ? `manifold: error: ${message}` : message, args.join(' '));
  const j = cli([...args, ...TARGET, '--json']);
  assert.is(j.code, 2);
  const doc = JSON.parse(j.stdout) as { error: { code: string; message: string } };
  assert.is(doc.error.code, 'ERR_USAGE');
  assert.match(doc.error.message, message);
}

test('missing arguments are named, with the command\'s help', () => {
  usage(['bind', 'web'], 'missing arguments PROTOCOL PREFIX PORT of "bind" (see "manifold bind --help")');
  usage(['bind', 'web', 'tcp', '192.0.2.0/24'], 'missing argument PORT of "bind" (see "manifold bind --help")');
  usage(['register-pid', '1'], 'missing arguments LABEL PROTOCOL IP PORT of "register-pid"');
  usage(['completion'], 'missing argument SHELL of "completion" (see "manifold completion --help")');
  usage([], 'missing command (see "manifold --help" for the list of commands)');
});

test('unknown commands say so, with the closest match', () => {
  usage(['bnid', 'web', 'tcp', '192.0.2.0/24', '80'], 'unknown command "bnid": did you mean "bind"? (see "manifold --help" for the list of commands)');
  usage(['stauts'], 'unknown command "stauts": did you mean "status"?');
  usage(['doc'], 'unknown command "doc": did you mean "doctor"?');
  usage(['frobnicate'], /unknown command "frobnicate" \(see "manifold --help" for the list of commands\)$/m);
});

test('tubectl-style single-dash options are answered with the right spelling, before anything else', () => {
  usage(['status', '-netns', '/run/netns/x'], '"-netns" is not an option: options are written with two dashes ("--netns")');
  usage(['-bpffs=/sys/fs/bpf', 'load'], '"-bpffs" is not an option: options are written with two dashes ("--bpffs")');
  usage(['nosuch', '-json'], '"-json" is not an option');
  usage(['-v'], '"-v" is not an option: the only short option is -h');
  usage(['status', '-x'], '"-x" is not an option: the only short option is -h');
  // "-" alone is an argument (standard input) and -h is help.
  const h = cli(['status', '-h']);
  assert.is(h.code, 0);
  assert.match(h.stdout, /^manifold status/);
});

test('extra arguments, unknown options and invalid choices are named', () => {
  usage(['bind', 'web', 'tcp', '192.0.2.0/24', '80', 'extra'], 'unexpected argument "extra" for "bind" (see "manifold bind --help")');
  usage(['load', 'x', 'y'], 'unexpected arguments "x", "y" for "load" (see "manifold load --help")');
  usage(['status', '--frob'], 'unknown option --frob for "status" (see "manifold status --help")');
  // yargs' camel-case alias of a dashed name is not a second complaint; odd short options are options.
  usage(['version', '--foo-bar'], /^(manifold: error: )?unknown option --foo-bar for "version" \(see "manifold version --help"\)$/m);
  usage(['bind', 'web', 'tcp', '192.0.2.1', '80', '--dry-run'], /^(manifold: error: )?unknown option --dry-run for "bind" \(see "manifold bind --help"\)$/m);
  usage(['version', '-_'], '"-_" is not an option: the only short option is -h');
  usage(['version', '-@'], '"-@" is not an option: the only short option is -h');
  usage(['completion', 'fish'], 'invalid SHELL "fish": expected one of "bash", "zsh" (see "manifold completion --help")');
});

test('the journal gets usage errors at notice, real failures at err', () => {
  const file = path.join(DIR, 'stderr');
  const run = (args: string[]): string => {
    const fd = fs.openSync(file, 'w');
    try {
      const st = fs.fstatSync(fd, { bigint: true });
      const r = spawnSync(BIN, args, {
        encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', fd],
        env: { ...process.env, JOURNAL_STREAM: `${st.dev}:${st.ino}`, MANIFOLD_JOURNAL: '' },
      });
      if (r.error) throw r.error;
    } finally {
      fs.closeSync(fd);
    }
    return fs.readFileSync(file, 'utf8');
  };
  const usageLog = run(['bind', 'web', ...TARGET]);
  assert.match(usageLog, /^<5>.*missing arguments PROTOCOL PREFIX PORT of "bind"/m);
  assert.not.match(usageLog, /^<3>/m);
  const failure = run(['apply', path.join(DIR, 'missing.json'), ...TARGET]);
  assert.match(failure, /^<3>.*cannot read .*missing\.json: no such file/m, 'a real failure is an error');
});

const COMMANDS = commandTable([
  ['load', []], ['bind <label> <protocol> <prefix> <port>', []], ['bindings', []], ['status [label]', []],
  ['apply [file]', ['load-bindings']], ['doctor', []], ['unbind <label> <protocol> <prefix> <port>', []],
]);

test('pure parts: edit distance, closest commands, positional words, single-dash options', () => {
  assert.is(editDistance('bnid', 'bind'), 1, 'a swap is one edit');
  assert.is(editDistance('', 'abc'), 3);
  assert.equal(closestCommands('bi', COMMANDS), ['bind', 'bindings'], 'prefixes first');
  assert.equal(closestCommands('unbnid', COMMANDS), ['unbind']);
  assert.equal(closestCommands('load-binding', COMMANDS), ['load-bindings'], 'aliases too');
  assert.equal(closestCommands('zzzz', COMMANDS), []);
  assert.equal(positionalWords(['--netns', '/x', 'bind', '--json', 'web', '--', '-1']), ['bind', 'web']);
  assert.equal(positionalWords(['--bpffs=/x', 'status']), ['status']);
  assert.is(singleDashError(['-', 'apply']), null);
  assert.is(singleDashError(['-h']), null);
  assert.is(singleDashError(['bind', 'web', 'tcp', '192.0.2.1', '-1']), null, 'a negative number is an argument (a bad port)');
  assert.is(singleDashError(['apply', '--', '-netns']), null);
  assert.match(singleDashError(['-lock-timeout', '3']) ?? '', '("--lock-timeout")');
  assert.is(explainUsage('Not enough non-option arguments: got 0, need at least 1', ['status', '--json'], COMMANDS), 'missing argument LABEL of "status" (see "manifold status --help")');
  assert.is(explainUsage('Something new from yargs', ['status'], COMMANDS), 'Something new from yargs (see "manifold status --help")');
});

test('an argument longer than any manifold takes is refused before the parser sees it, without echoing it', () => {
  const long = 'a'.repeat(128 * 1024 - 1);
  usage([long], /argument 1 is 131071 characters long: no manifold argument is longer than 4096$/m);
  usage(['bind', 'web', 'tcp', '192.0.2.1', '80', `--label=${'x'.repeat(5000)}`], /argument 6 is 5008 characters long/);
  const r = cli(['bind', 'x'.repeat(4096), 'tcp', '192.0.2.1', '80', ...TARGET]);
  assert.not.match(r.stderr, /characters long/, 'at the limit: the label check speaks');
});

test('bindings: a filter given as an argument and as an option that differ is a usage error (neither silently wins)', () => {
  usage(['bindings', '--protocol', 'udp', 'tcp'], 'the PROTOCOL argument and --protocol were both given, and differ: give one');
  usage(['bindings', 'any', '192.0.2.1', '80', '--port', '81'], 'the PORT argument and --port were both given, and differ: give one');
  usage(['bindings', '--prefix=192.0.2.1', 'any', '198.51.100.1'], 'the PREFIX argument and --prefix were both given, and differ: give one');
  // The same value both ways, or the option alone (repeated: the last wins), is no conflict: past the arguments, the bpffs check speaks.
  for (const args of [['bindings', 'tcp', '--protocol', 'tcp'], ['bindings', '--protocol', 'udp', '--protocol', 'tcp'], ['bindings', 'any', '192.0.2.1', '--port', '80']]) {
    assert.match(cli([...args, ...TARGET]).stderr, /not a bpf filesystem/, args.join(' '));
  }
});

test.run();
