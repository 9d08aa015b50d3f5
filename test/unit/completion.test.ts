/**
 * Shell completion: `manifold completion bash|zsh` prints scripts that real
 * bash and zsh load, and that complete commands, options, protocols and
 * address families by asking `manifold --get-yargs-completions` (file
 * arguments get no candidates, so the shell falls back to file names).
 * The scripts are sourced in a clean shell and their completion function
 * called as the shell would (zsh's _describe/_default replaced by printers,
 * since they need an interactive line editor). Labels from a loaded state:
 * test/integration/cli-output.test.ts. Plus the pure slot logic.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { slotOf, slotValues, targetOptions } from '../../src/cli/completion.js';
import { commandTable } from '../../src/cli/usage.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const BIN = path.join(ROOT, 'bin', 'manifold');
/** A directory that is no bpffs: label lookups find nothing, quickly. */
const NO_STATE = ['--bpffs', '/nonexistent-manifold-test'];

function sh(shell: string, script: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(shell, shell === 'zsh' ? ['-f', '-c', script] : ['--norc', '--noprofile', '-c', script], {
    encoding: 'utf8', timeout: 60_000, env: { ...process.env, MANIFOLD_JOURNAL: '0', BIN },
  });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Complete `words` (the last is the word being completed) in bash; COMPREPLY sorted. */
function bash(words: string[]): string[] {
  const list = ['"$BIN"', ...words.map((w) => `'${w}'`)].join(' ');
  const r = sh('bash', `source <("$BIN" completion bash) || exit 9
COMP_WORDS=(${list}); COMP_CWORD=$(( \${#COMP_WORDS[@]} - 1 ))
_manifold_completions; printf '%s\\n' "\${COMPREPLY[@]}"`);
  assert.is(r.code, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean).sort();
}

/** Complete `words` in zsh: what _describe would offer (names without descriptions), or ["<files>"] for _default. */
function zsh(words: string[]): string[] {
  const list = ['"$BIN"', ...words.map((w) => `'${w}'`)].join(' ');
  const r = sh('zsh', `_describe() { print -rl -- "\${(@P)2}"; }
_default() { print -r -- '<files>'; }
compdef() { : }
source <("$BIN" completion zsh) || exit 9
words=(${list}); CURRENT=\${#words}; BUFFER="\${words[*]}"; CURSOR=\${#BUFFER}
_manifold_completions`);
  assert.is(r.code, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean).map((l) => l.replace(/(?<!\\):.*$/, '')).sort();
}

test('completion bash|zsh print scripts the shells accept; --json wraps the script; another shell is a usage error', () => {
  for (const shell of ['bash', 'zsh']) {
    const r = spawnSync(BIN, ['completion', shell], { encoding: 'utf8', timeout: 60_000 });
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stdout, shell === 'bash' ? /^complete -o bashdefault -o default -F _manifold_completions manifold$/m : /^#compdef manifold$/m);
    const syntax = spawnSync(shell, ['-n'], { input: r.stdout, encoding: 'utf8', timeout: 60_000 });
    assert.is(syntax.status, 0, `${shell} -n: ${syntax.stderr}`);
    const j = spawnSync(BIN, ['completion', shell, '--json'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(JSON.parse(j.stdout), { shell, script: r.stdout });
  }
  const fish = spawnSync(BIN, ['completion', 'fish'], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, MANIFOLD_JOURNAL: '0' } });
  assert.is(fish.status, 2);
  assert.match(fish.stderr, /invalid SHELL "fish": expected one of "bash", "zsh"/);
});

test('bash: commands, options of the command, protocols, families; nothing for files', () => {
  assert.equal(bash(['b']), ['bind', 'bindings']);
  assert.equal(bash(['do']), ['doctor']);
  assert.equal(bash([...NO_STATE, 'bind', 'web', '']), ['tcp', 'udp']);
  assert.equal(bash([...NO_STATE, 'bind', 'web', 'u']), ['udp']);
  assert.equal(bash([...NO_STATE, 'unregister', 'web', '']), ['ipv4', 'ipv6']);
  assert.equal(bash(['status', '--su']), ['--summary']);
  assert.equal(bash(['bindings', '--protocol', '']), ['tcp', 'udp']);
  assert.ok(bash(['bindings', '--']).includes('--label'));
  assert.equal(bash(['apply', '']), []);
  assert.equal(bash(['lookup', '']).filter((w) => !w.startsWith('--')), ['tcp', 'udp']);
  assert.equal(bash(['lookup', '--source', '192.0.2.1', 'u']), ['udp'], 'an option value is not a positional');
  assert.equal(bash(['completion', '']).filter((w) => !w.startsWith('--')), ['bash', 'zsh']);
  assert.equal(bash([...NO_STATE, 'bind', '']), [], 'no state: no labels');
});

test('zsh: the same candidates; files left to _default', () => {
  assert.equal(zsh([...NO_STATE, 'bind', 'web', '']), ['tcp', 'udp']);
  assert.equal(zsh([...NO_STATE, 'register-pid', '1', 'web', '']), ['tcp', 'udp']);
  const cmds = zsh(['']);
  for (const c of ['load', 'bind', 'apply', 'status', 'doctor', 'completion']) assert.ok(cmds.includes(c), `${c} offered`);
  assert.equal(zsh(['apply', '']), ['<files>']);
});

const COMMANDS = commandTable([
  ['bind <label> <protocol> <prefix> <port>', []],
  ['unregister <label> <domain> <protocol>', []],
  ['apply [file]', ['load-bindings']],
  ['verify [files..]', []],
  ['status [label]', []],
]);

test('slots: positionals by position (aliases, options and their values skipped), option values, variadic files', () => {
  const slot = (...w: string[]): string => slotOf(['manifold', ...w], COMMANDS).kind;
  assert.is(slot('bind', ''), 'label');
  assert.is(slot('--netns', '/run/netns/x', 'bind', 'w', ''), 'protocol');
  assert.is(slot('bind', '--json', 'w', 'tcp', ''), 'other');
  assert.is(slot('unregister', 'w', ''), 'domain');
  assert.is(slot('load-bindings', ''), 'file');
  assert.is(slot('verify', 'a', 'b', ''), 'file');
  assert.is(slot('status', ''), 'label');
  assert.is(slot('status', '--label', ''), 'label');
  assert.is(slot('bindings', '--protocol', ''), 'protocol');
  assert.is(slot('bind', '--'), 'other');
  assert.is(slot('nosuch', ''), 'other');
  assert.equal(slotValues({ kind: 'label' }, () => ['a', 'b']), ['a', 'b']);
  assert.equal(slotValues({ kind: 'file' }, () => ['x']), []);
  assert.is(slotValues({ kind: 'other' }, () => ['x']), null);
});

test('targetOptions: --netns/--bpffs (both spellings, last wins), not the word being completed', () => {
  assert.equal(targetOptions(['--netns', '/a', '--bpffs=/b', '--netns=/c', 'bind', '']), { netns: '/c', bpffs: '/b' });
  assert.equal(targetOptions(['bind', '--bpffs']), {});
  assert.equal(targetOptions(['--bpffs', '/x']), {});
});

test.run();
