/**
 * sd_notify status for commands run by systemd units.
 */
/** Hook replaced by the systemd integration; no-op without NOTIFY_SOCKET. */
export function notifyStatus(_status: string): void {
  /* implemented with the systemd integration */
}
