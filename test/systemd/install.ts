/**
 * Installing manifold into a test container (see harness.ts), separate from
 * any scenario: a scenario takes an {@link Installer} and only relies on the
 * installed paths of {@link Installation}, so the same scenario can test
 * the checkout or a built package.
 *
 * - {@link installFromCheckout}: what `make install` would do, with wrappers
 *   that run this checkout's single executable (build/sea/manifold).
 * - {@link installDeb}: `dpkg -i` of a .deb inside the container.
 *
 * Both leave the system as a package's maintainer scripts would: group
 * "manifold" created (sysusers.d), units known to the manager
 * (daemon-reload, so the generator has run), manifold.service enabled and
 * started.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Container } from './harness.js';

/** Where things are once manifold is installed in a container. */
export interface Installation {
  /** The manifold command (also what the generator writes into ExecStartPost=). */
  bin: string;
  /** Directory holding the shipped units. */
  unitDir: string;
  /** The generator. */
  generator: string;
  /** The sysusers.d file. */
  sysusers: string;
  /** The shipped units, as file names in {@link unitDir}. */
  units: string[];
}

/** Installs manifold into a booted container. */
export type Installer = (c: Container) => Promise<Installation>;

/** The paths of a package install (also used by {@link installFromCheckout}). */
export const PACKAGE_LAYOUT: Installation = {
  bin: '/usr/bin/manifold',
  unitDir: '/usr/lib/systemd/system',
  generator: '/usr/lib/systemd/system-generators/manifold-generator',
  sysusers: '/usr/lib/sysusers.d/manifold.conf',
  units: ['manifold.service', 'manifold-register@.service', 'manifold-metrics.socket', 'manifold-metrics.service'],
};

/** A file to write: container path → content and mode. */
export type FileSet = Record<string, { content: string; mode: number }>;

/**
 * The files of an install from the checkout `workTree`: wrappers that run
 * its single executable (build/sea/manifold, and the generator under its
 * name manifold-generator; `make build`). Pure; usable as
 * `bootSystemd({ files })` to install before boot.
 */
export function checkoutFiles(workTree: string, layout: Installation = PACKAGE_LAYOUT): FileSet {
  const sh = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const wrapper = (exe: string): string => `#!/bin/sh\nexec ${sh(path.join(workTree, 'build', 'sea', exe))} "$@"\n`;
  const files: FileSet = {
    [layout.bin]: { content: wrapper('manifold'), mode: 0o755 },
    [layout.generator]: { content: wrapper('manifold-generator'), mode: 0o755 },
    [layout.sysusers]: { content: fs.readFileSync(path.join(workTree, 'units', 'manifold.sysusers'), 'utf8'), mode: 0o644 },
  };
  for (const unit of layout.units) {
    files[path.join(layout.unitDir, unit)] = { content: fs.readFileSync(path.join(workTree, 'units', unit), 'utf8'), mode: 0o644 };
    // The checkout may live under /tmp (a CI clone), which the units'
    // PrivateTmp= hides: bind it into every service (test installs only).
    if (unit.endsWith('.service')) {
      files[path.join('/etc/systemd/system', `${unit}.d`, '50-test-checkout.conf')] = {
        content: `# test install from a checkout\n[Service]\nBindReadOnlyPaths=${workTree}\n`,
        mode: 0o644,
      };
    }
  }
  return files;
}

async function must(c: Container, argv: string[]): Promise<string> {
  const r = await c.exec(argv, { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited with ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

/** What the maintainer scripts of a package do after unpacking. */
export async function postInstall(c: Container, layout: Installation = PACKAGE_LAYOUT): Promise<void> {
  await must(c, ['systemd-sysusers', path.basename(layout.sysusers)]);
  await must(c, ['systemctl', 'daemon-reload']);
  await must(c, ['systemctl', 'enable', '--now', 'manifold.service']);
}

/** Installs this checkout (the container's `workTree`) like `make install`. */
export const installFromCheckout: Installer = async (c) => {
  for (const [file, { content, mode }] of Object.entries(checkoutFiles(c.workTree))) {
    await c.writeFile(file, content, mode);
  }
  await postInstall(c);
  return PACKAGE_LAYOUT;
};

/**
 * Installs a .deb (host path) with dpkg inside the container; its maintainer
 * scripts are expected to do what {@link postInstall} does, which is run
 * again anyway (idempotent). Dependencies must already be installed on the host.
 */
export function installDeb(deb: string): Installer {
  return async (c) => {
    const inside = `/var/cache/manifold-test/${path.basename(deb)}`;
    await c.writeFile(inside, fs.readFileSync(deb));
    await must(c, ['dpkg', '-i', inside]);
    await postInstall(c);
    return PACKAGE_LAYOUT;
  };
}

/** The installer chosen by the environment: $MANIFOLD_TEST_DEB (a .deb on the host) or the checkout. */
export function installerFromEnv(env: NodeJS.ProcessEnv = process.env): { name: string; install: Installer } {
  const deb = env['MANIFOLD_TEST_DEB'];
  if (deb) return { name: `package ${path.resolve(deb)}`, install: installDeb(path.resolve(deb)) };
  return { name: 'checkout', install: installFromCheckout };
}
