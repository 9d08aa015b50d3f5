/**
 * The sk_lookup programs attached to a network namespace, from the kernel's
 * list of BPF links (needs CAP_SYS_ADMIN): doctor names them, and load
 * refuses to attach a second manifold dispatcher to a namespace.
 */
import { linkFdById, linkInfo, progFdById, progInfo } from '../sys/bpf.js';
import { SysError } from '../sys/errno.js';
import { closeFd } from '../sys/libc.js';
import { nextLinkId } from '../sys/probe.js';

/** BPF_LINK_TYPE_NETNS. */
const LINK_TYPE_NETNS = 5;
/** BPF_SK_LOOKUP. */
const ATTACH_SK_LOOKUP = 36;
/** Name of manifold's dispatcher program as the kernel keeps it (15 characters). */
export const DISPATCHER_NAME = 'manifold_dispat';
/** Links examined at most (a host has far fewer). */
const MAX_LINKS = 1_000_000;

/** An sk_lookup link of the namespace. */
export interface SkLookupLink {
  linkId: number;
  progId: number;
  program: string;
}

/** Every sk_lookup link attached to the namespace with inode `ino`, in attach order (link ids grow). */
export function skLookupLinks(ino: number): SkLookupLink[] {
  const out: SkLookupLink[] = [];
  let id = 0;
  for (let n = 0; n < MAX_LINKS; n++) {
    const next = nextLinkId(id);
    if (next === null) break;
    id = next;
    let fd: number | null;
    try {
      fd = linkFdById(id);
    } catch (err) {
      if (err instanceof SysError && err.errno === 2) continue;
      throw err;
    }
    if (fd === null) continue;
    try {
      const info = linkInfo(fd);
      if (info.type !== LINK_TYPE_NETNS || info.attachType !== ATTACH_SK_LOOKUP || info.netnsIno !== ino) continue;
      let program = '?';
      try {
        const pfd = progFdById(info.progId);
        try {
          program = progInfo(pfd).name || '?';
        } finally {
          closeFd(pfd);
        }
      } catch {
        /* the program went away meanwhile */
      }
      out.push({ linkId: info.id, progId: info.progId, program });
    } finally {
      closeFd(fd);
    }
  }
  return out.sort((a, b) => a.linkId - b.linkId);
}

