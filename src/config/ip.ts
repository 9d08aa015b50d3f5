/**
 * Address, prefix and port parsing for the config files: the same parser as
 * every other input (src/core/net.ts), in its reason-returning form.
 */
export {
  formatAddr as formatIp,
  formatPorts,
  formatPrefix as formatIpPrefix,
  hostBitsSet,
  maskPrefix,
  MAX_PORT_RANGE as MAX_PORT_SPAN,
  parsePortRangeText as parsePorts,
  parsePrefixText as parseIpPrefix,
} from '../core/net.js';
