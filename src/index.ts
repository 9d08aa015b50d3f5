/**
 * manifold as a library: the UDP original-destination socket for servers
 * behind sk_lookup, and the pure parsing helpers.
 */
export { openOrigDstUdp, OrigDstUdpSocket } from './udp.js';
export type { DatagramInfo, OrigDstUdpOptions, SendResult, UdpEndpoint } from './udp.js';
export { parsePrefix, parsePortRange, parseProtocol, formatPrefix } from './core/net.js';
export { validateLabel } from './core/labels.js';
export { ManifoldError, ErrorCodes, Exit } from './errors.js';
