/**
 * A state directory on bpffs and its pins. The one owner of pin ownership
 * and modes: every path that creates a pin or a state directory (load,
 * upgrade, the ABI migration, writes that replace a generation's maps,
 * repairs) goes through PinDir, so the read-only group keeps access.
 *
 * Directory 0750 and pins 0640, owned by the owner recorded in the state's
 * marker (the user who loaded it) and its group (`load --group`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { ManifoldError } from '../errors.js';
import { objGet, objPin } from '../sys/bpf.js';
import { SysError } from '../sys/errno.js';

/** Mode of a state directory. */
export const DIR_MODE = 0o750;
/** Mode of every pin. */
export const PIN_MODE = 0o640;

/** Owner of a state's files. */
export interface PinOwner {
  uid: number;
  gid: number;
}

/** Translate failures to open pins into user-facing errors. */
export function pinError(err: unknown, what: string, rootOnly = false): Error {
  if (err instanceof SysError && (err.errno === 1 || err.errno === 13)) {
    // A pinned program or link cannot be opened read-only: the group's read access does not reach it.
    const fix = rootOnly ? 'run as root (a pinned program or link cannot be opened read-only, so the state\'s group does not help)' : "run as root, or as a member of the state's group for read-only commands";
    return new ManifoldError('ERR_PERMISSION', `permission denied opening ${what}: ${fix}`, undefined, { cause: err });
  }
  if (err instanceof SysError && err.errno === 2) {
    return new ManifoldError('ERR_STALE_STATE', `${what} is missing: the state directory is incomplete; "manifold load" repairs it`, undefined, { cause: err });
  }
  return err as Error;
}

/** Give a state directory its mode and owner. */
export function ownDir(dir: string, owner: PinOwner): void {
  fs.chmodSync(dir, DIR_MODE);
  fs.chownSync(dir, owner.uid, owner.gid);
}

/** A state directory: opens, creates and replaces its pins. */
export class PinDir {
  readonly dir: string;
  readonly write: boolean;
  owner: PinOwner;

  constructor(dir: string, write: boolean, owner: PinOwner) {
    this.dir = dir;
    this.write = write;
    this.owner = owner;
  }

  /** Path of a pin. */
  path(name: string): string {
    return path.join(this.dir, name);
  }

  /** Open a pinned map (read-only for readers). */
  openMap(name: string): number {
    try {
      return objGet(this.path(name), !this.write);
    } catch (err) {
      throw pinError(err, `the pinned map ${name}`);
    }
  }

  /** Open a pinned map, or null when the pin does not exist. */
  tryOpenMap(name: string): number | null {
    try {
      return objGet(this.path(name), !this.write);
    } catch (err) {
      if (err instanceof SysError && err.errno === 2) return null;
      throw pinError(err, `the pinned map ${name}`);
    }
  }

  /** Open a pinned program or link (writers only: they cannot be opened read-only). */
  openObject(name: string): number {
    try {
      return objGet(this.path(name));
    } catch (err) {
      throw pinError(err, `the pinned object ${name}`, true);
    }
  }

  /**
   * Pin `fd` as `name`, replacing an existing pin atomically: pinned under a
   * temporary name, given its owner and mode, then renamed over the old one.
   */
  pin(fd: number, name: string): void {
    const final = this.path(name);
    const tmp = `${final}_new`;
    fs.rmSync(tmp, { force: true });
    objPin(fd, tmp);
    try {
      fs.chmodSync(tmp, PIN_MODE);
      fs.chownSync(tmp, this.owner.uid, this.owner.gid);
      fs.renameSync(tmp, final);
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      throw err;
    }
  }

  /** Remove a pin (absent is fine). */
  unpin(name: string): void {
    fs.rmSync(this.path(name), { force: true });
  }

  /** Names in the directory. */
  names(): string[] {
    return fs.readdirSync(this.dir);
  }

  /** Put every entry back to the directory's owner and modes (repairs older states). */
  normalize(): void {
    ownDir(this.dir, this.owner);
    for (const name of this.names()) {
      const p = this.path(name);
      fs.chmodSync(p, PIN_MODE);
      fs.chownSync(p, this.owner.uid, this.owner.gid);
    }
  }
}
