/**
 * Journal field mapping, the `<N>` stderr fallback, sink choice and sd_notify
 * state strings (pure functions; no journald or systemd needed).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EventIds } from '../../src/log/events.js';
import { clampPriority, journalFieldName, journalFields, prefixedStderrLines } from '../../src/log/journal.js';
import { chooseLogTarget, installLogSinks, journalDisabled, logTarget, stderrIsJournal, type LogEnvironment } from '../../src/log/sinks.js';
import { emitEvent, Priority } from '../../src/log/events.js';
import { logError } from '../../src/log/error.js';
import { notify, notifyState, statusText } from '../../src/log/notify.js';
import { sdJournalSendv } from '../../src/sys/systemd.js';
import { redirectStdio } from '../../src/log/stdio.js';

test('journalFields: standard fields, then MANIFOLD_<NAME> for each field, nulls skipped', () => {
  const items = journalFields('bind', 6, 'bound tcp 10.0.0.0/8 port 80 -> web', {
    LABEL: 'web', PROTOCOL: 'tcp', PREFIX: '10.0.0.0/8', PORT: 80, SOCKET_COOKIE: '4097',
    NETNS: 4026531840, COOKIE64: 18446744073709551615n, GONE: null, ALSO_GONE: undefined,
  });
  assert.equal(items, [
    'MESSAGE=bound tcp 10.0.0.0/8 port 80 -> web',
    `MESSAGE_ID=${EventIds.bind}`,
    'PRIORITY=6',
    'SYSLOG_IDENTIFIER=manifold',
    'MANIFOLD_EVENT=bind',
    'MANIFOLD_LABEL=web',
    'MANIFOLD_PROTOCOL=tcp',
    'MANIFOLD_PREFIX=10.0.0.0/8',
    'MANIFOLD_PORT=80',
    'MANIFOLD_SOCKET_COOKIE=4097',
    'MANIFOLD_NETNS=4026531840',
    'MANIFOLD_COOKIE64=18446744073709551615',
  ]);
});

test('journalFields: a list value is the field once per item (journald matches any of them)', () => {
  const f = journalFields('apply', Priority.notice, 'applied', { ADDED: 2, LABEL: ['dns', 'web'], LABELS_OMITTED: undefined });
  assert.equal(f.filter((x) => x.startsWith('MANIFOLD_LABEL')), ['MANIFOLD_LABEL=dns', 'MANIFOLD_LABEL=web']);
  assert.ok(f.includes('MANIFOLD_ADDED=2'));
  assert.is(journalFields('apply', Priority.notice, 'applied', { LABEL: [] }).filter((x) => x.startsWith('MANIFOLD_LABEL')).length, 0, 'an empty list: no field');
});

test('journalFields: every kind has its own 128-bit MESSAGE_ID', () => {
  const ids = Object.values(EventIds);
  assert.is(new Set(ids).size, ids.length);
  for (const id of ids) assert.match(id, /^[0-9a-f]{32}$/);
  assert.ok(journalFields('error', 3, 'x').includes(`MESSAGE_ID=${EventIds.error}`));
});

test('journal field names: upper-cased, [A-Z0-9_] only, no leading _, ≤ 64 chars, no clash with EVENT', () => {
  assert.is(journalFieldName('stateDir'), 'MANIFOLD_STATEDIR');
  assert.is(journalFieldName('state-dir'), 'MANIFOLD_STATE_DIR');
  assert.is(journalFieldName('_PID'), 'MANIFOLD_PID');
  assert.is(journalFieldName('9LIVES'), 'MANIFOLD_9LIVES');
  assert.is(journalFieldName('é'), null);
  assert.is(journalFieldName('___'), null);
  assert.is(journalFieldName('A'.repeat(55)), `MANIFOLD_${'A'.repeat(55)}`);
  assert.is(journalFieldName('A'.repeat(56)), null);
  const items = journalFields('apply', 5, 'm', { EVENT: 'spoofed', label: 'a', LABEL: 'b' });
  assert.equal(items.filter((i) => i.startsWith('MANIFOLD_')), ['MANIFOLD_EVENT=apply', 'MANIFOLD_LABEL=a']);
  for (const i of journalFields('apply', 5, 'm', { 'a b': 1, 'x.y': 2 })) assert.match(i, /^[A-Z][A-Z0-9_]*=/);
});

test('journalFields: multi-line values kept as they are (sd_journal_sendv is binary-safe); extra fields', () => {
  const items = journalFields('error', 3, 'line 1\nline 2', { CODE: 'ERR_X' }, { ERRNO: 98, 'bad key': 1 });
  assert.is(items[0], 'MESSAGE=line 1\nline 2');
  assert.ok(items.includes('MANIFOLD_CODE=ERR_X'));
  assert.is(items.at(-1), 'ERRNO=98');
  assert.not.ok(items.some((i) => i.startsWith('bad key')));
});

test('priorities are clamped to 0..7', () => {
  assert.is(clampPriority(3), 3);
  assert.is(clampPriority(-1), 0);
  assert.is(clampPriority(9), 7);
  assert.is(clampPriority(4.7), 4);
  assert.is(clampPriority(Number.NaN), 6);
  assert.ok(journalFields('load', 42, 'm').includes('PRIORITY=7'));
});

test('<N> stderr fallback: every line prefixed, one trailing newline', () => {
  assert.is(prefixedStderrLines(5, 'registered web socket 4097'), '<5>registered web socket 4097\n');
  assert.is(prefixedStderrLines(3, 'failed\ndetails'), '<3>failed\n<3>details\n');
  assert.is(prefixedStderrLines(99, 'x'), '<7>x\n');
});

test('sink choice: journal when libsystemd + socket, <N> on a journal stream, else none', () => {
  const env = (o: Partial<LogEnvironment>): LogEnvironment => ({ disabled: false, libsystemd: false, journalSocket: false, stderrIsJournal: false, ...o });
  assert.is(chooseLogTarget(env({ libsystemd: true, journalSocket: true })), 'journal');
  assert.is(chooseLogTarget(env({ libsystemd: true, journalSocket: true, stderrIsJournal: true })), 'journal');
  assert.is(chooseLogTarget(env({ libsystemd: false, journalSocket: true, stderrIsJournal: true })), 'stderr-prefix');
  assert.is(chooseLogTarget(env({ libsystemd: false, journalSocket: true })), 'none');
  assert.is(chooseLogTarget(env({ libsystemd: true })), 'none');
  assert.is(chooseLogTarget(env({ disabled: true, libsystemd: true, journalSocket: true, stderrIsJournal: true })), 'none');
  assert.ok(journalDisabled('off'));
  assert.ok(journalDisabled('0'));
  assert.not.ok(journalDisabled(undefined));
  assert.not.ok(journalDisabled('1'));
});

test('$JOURNAL_STREAM counts only when it names fd 2', async () => {
  const fs = await import('node:fs');
  const st = fs.fstatSync(2, { bigint: true });
  assert.ok(stderrIsJournal(`${st.dev}:${st.ino}`));
  assert.not.ok(stderrIsJournal(`${st.dev}:${st.ino + 1n}`));
  assert.not.ok(stderrIsJournal(undefined));
  assert.not.ok(stderrIsJournal('garbage'));
});

test('sd_notify state: STATUS flattened to one line, nulls skipped, order kept', () => {
  assert.is(statusText(' a\nb\r\nc '), 'a b c');
  assert.is(notifyState({ READY: 1, STATUS: 'registered\nweb' }), 'READY=1\nSTATUS=registered web');
  assert.is(notifyState({ READY: 1, STATUS: undefined }), 'READY=1');
  assert.is(notifyState({ STATUS: 'bind failed', ERRNO: 98 }), 'STATUS=bind failed\nERRNO=98');
});

test('notify does nothing without $NOTIFY_SOCKET', () => {
  const saved = process.env.NOTIFY_SOCKET;
  delete process.env.NOTIFY_SOCKET;
  try {
    assert.is(notify({ READY: 1 }), 'no-socket');
  } finally {
    if (saved !== undefined) process.env.NOTIFY_SOCKET = saved;
  }
});

test('sd_journal_sendv binding: validates items (no journald needed)', () => {
  const r = sdJournalSendv(['not a field']);
  if (r === null) return; /* libsystemd missing: nothing to check */
  assert.is(r, -22, 'libsystemd rejects an item without "=" with EINVAL');
  assert.is(sdJournalSendv([]), -22);
});

test('installLogSinks wires the <N> sink: events and logError become prefixed stderr lines', () => {
  installLogSinks({ disabled: false, libsystemd: false, journalSocket: false, stderrIsJournal: true });
  installLogSinks({ disabled: false, libsystemd: true, journalSocket: true, stderrIsJournal: false }); /* once only */
  assert.is(logTarget(), 'stderr-prefix');
  const written: string[] = [];
  redirectStdio((fd, data) => {
    assert.is(fd, 2, 'on stderr');
    written.push(Buffer.from(data).toString('utf8'));
  });
  try {
    emitEvent('unbind', Priority.info, 'unbound tcp 10.0.0.0/8 port 80 from web', { LABEL: 'web' });
    logError('ERR_PERMISSION', 'permission denied', 13);
  } finally {
    redirectStdio(null);
  }
  assert.equal(written, ['<6>unbound tcp 10.0.0.0/8 port 80 from web\n', '<3>permission denied\n']);
});

test.run();
