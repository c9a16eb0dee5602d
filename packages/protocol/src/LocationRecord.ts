/**
 * A client's location as a server recorded it: the parts of its AT line.
 * All text fields are latin1 strings (one char per wire byte).
 */
export interface LocationRecord {
  /** The server that received the IAMAT. */
  readonly origin: string
  /** Its receive time minus the client time: sign, digits, `.`, nine digits. */
  readonly skew: string
  readonly client: string
  /** ISO 6709 text as the client sent it, e.g. `+34.068930-118.445127`. */
  readonly location: string
  /** The client's POSIX time as sent, e.g. `1621464827.959498503`. */
  readonly time: string
}
