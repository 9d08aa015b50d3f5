#!/usr/bin/env node
// Writes the Debian copyright file (machine-readable format 1.0) for the package:
// manifold itself, the Node.js runtime the single executable embeds (with Node's
// own licence file in full, which covers what Node bundles), then every npm package
// esbuild put into the bundles (from their metafile, build/dist/bundle-meta.json)
// and koffi, each with the copyright lines and licence text of its own licence file.
//
//   packaging-copyright.mjs [DIST] > copyright
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.resolve(process.argv[2] ?? path.join(root, 'build', 'dist'));
const nm = path.join(root, 'node_modules');

/** Debian's names for the SPDX identifiers in use. */
const DEBIAN_NAME = { MIT: 'Expat', ISC: 'ISC', 'Apache-2.0': 'Apache-2.0', 'BSD-3-Clause': 'BSD-3-clause', 'BSD-2-Clause': 'BSD-2-clause' };
/** Licences whose full text Debian ships in /usr/share/common-licenses. */
const COMMON = new Set(['Apache-2.0']);

const meta = JSON.parse(fs.readFileSync(path.join(dist, 'bundle-meta.json'), 'utf8'));
const pkgs = new Set(['koffi']);
for (const o of Object.values(meta.outputs)) {
  for (const input of Object.keys(o.inputs)) {
    const m = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m) pkgs.add(m[1]);
  }
}

/** DEP-5 continuation lines: one leading space, " ." for empty lines. */
const block = (text) => text.replace(/\r/g, '').replace(/\t/g, '    ').trimEnd().split('\n')
  .map((l) => (l.trim() === '' ? ' .' : ` ${l.trimEnd()}`)).join('\n');

function licenseFile(dir) {
  return fs.readdirSync(dir).filter((f) => /^(licen[cs]e|copying)/i.test(f)).sort()[0];
}

function authorOf(pj) {
  const a = pj.author;
  if (!a) return undefined;
  return typeof a === 'string' ? a : [a.name, a.email && `<${a.email}>`].filter(Boolean).join(' ');
}

const paragraphs = [];
const standalone = new Set(['BSD-3-clause']);
const problems = [];
for (const name of [...pkgs].sort()) {
  const dir = path.join(nm, name);
  const pj = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const spdx = String(pj.license ?? '');
  const deb = DEBIAN_NAME[spdx];
  if (!deb) { problems.push(`${name}: licence "${spdx}" has no Debian name in packaging-copyright.mjs`); continue; }
  const lf = licenseFile(dir);
  if (!lf) { problems.push(`${name}: no licence file`); continue; }
  const text = fs.readFileSync(path.join(dir, lf), 'utf8');
  const copyright = [...new Set(text.split('\n').map((l) => l.trim())
    // A line that starts with "Copyright"/"(c)"/"©" and names a year or someone (the
    // Apache text's own "(c) You must retain..." and "Copyright [yyyy]" are neither).
    .filter((l) => /^(copyright\b|\(c\)|©)/i.test(l) && !/^copyright (notice|owner|holder|license|and)/i.test(l)
      && !/\[yyyy\]|\{yyyy\}|you must/i.test(l))
    .map((l) => l.replace(/^copyright\s*(\(c\)|©)?\s*/i, '').trim()))];
  if (copyright.length === 0) copyright.push(authorOf(pj) ?? `the ${name} authors`);
  const files = name === 'koffi'
    ? 'node_modules/koffi/* node_modules/@koromix/koffi-linux-*/*'
    : `node_modules/${name}/*`;
  const lines = [`Files: ${files}`, `Copyright: ${copyright.join('\n ')}`];
  if (COMMON.has(deb)) {
    standalone.add(deb);
    lines.push(`License: ${deb}`);
  } else {
    lines.push(`License: ${deb}\n${block(text.replace(/^[\s\S]*?(?=Permission|Redistribution)/, ''))}`);
  }
  lines.push(`Comment: ${name} ${pj.version}, ${name === 'koffi' ? 'with its prebuilt binary in /usr/lib/manifold/node_modules' : 'bundled into /usr/lib/manifold/manifold or /usr/lib/manifold/lib'}.`);
  paragraphs.push(lines.join('\n'));
}
if (problems.length) {
  console.error(`packaging-copyright:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}

const bsd3 = `Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:

1. Redistributions of source code must retain the above copyright notice, this
   list of conditions and the following disclaimer.

2. Redistributions in binary form must reproduce the above copyright notice,
   this list of conditions and the following disclaimer in the documentation
   and/or other materials provided with the distribution.

3. Neither the name of the copyright holder nor the names of its contributors
   may be used to endorse or promote products derived from this software
   without specific prior written permission.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE
FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR
SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER
CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY,
OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.`;

// The embedded Node.js: its licence file (Node's MIT licence, then the licences of
// everything Node includes: V8, OpenSSL, ICU, libuv, ...) in full.
const node = JSON.parse(fs.readFileSync(path.join(dist, 'node.json'), 'utf8'));
const nodeLicence = fs.readFileSync(node.license, 'utf8');
const nodeParagraph = [
  'Files: usr/lib/manifold/manifold',
  'Copyright: Node.js contributors\n Joyent, Inc. and other Node contributors\n the authors of the software Node.js includes (see the licence below)',
  'License: Node.js',
  `Comment: /usr/lib/manifold/manifold is a copy of the build machine's Node.js ${node.version}\n${block(`executable, stripped of symbols, with manifold's start-up snapshot injected the way
Node.js builds single executable applications; it does not use the system's nodejs.`)}`,
].join('\n');

const out = [
  [
    'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
    'Upstream-Name: manifold',
    `Comment: manifold's own code and the npm packages it uses are bundled with esbuild\n${block(`into the start-up snapshot of /usr/lib/manifold/manifold, a Node.js single
executable (the packages only some commands use into /usr/lib/manifold/lib/*.cjs);
koffi and its prebuilt binary are shipped as they come from npm. The paragraphs
below name the embedded Node.js and each bundled package with the copyright and
licence of its own licence file.`)}`,
  ].join('\n'),
  ['Files: *', 'Copyright: manifold contributors', 'License: BSD-3-clause'].join('\n'),
  nodeParagraph,
  ...paragraphs,
  `License: BSD-3-clause\n${block(bsd3)}`,
  `License: Node.js\n${block(nodeLicence)}`,
  ...[...standalone].filter((l) => COMMON.has(l)).map((l) => `License: ${l}\n On Debian systems, the full text of the ${l} licence is in\n /usr/share/common-licenses/${l}.`),
];
process.stdout.write(`${out.join('\n\n')}\n`);
