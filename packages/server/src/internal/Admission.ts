/**
 * Who may hold a connection, so that clients can never take the slots the
 * herd's own links need (a neighbour that restarts must get back in, or its
 * reports reach no one).
 *
 * Clients share `maxClients` slots. Neighbours' links have an allowance of
 * their own: a connection that says `PEER` moves out of the clients' slots
 * into it. Past the client limit, a new connection is not closed at once: it
 * gets a short probation in which its first line must be `PEER` with the
 * name of a server of the herd, else it is closed. Probation slots are as
 * few as the peers' allowance, so a flood of strangers costs little.
 */
export type Slot = "client" | "peer" | "probation"

export class Admission {
  private clients = 0
  private peers = 0
  private onProbation = 0

  constructor(readonly maxClients: number, readonly peerAllowance: number) {}

  /** The slot of a new connection, or `undefined` when it must be closed at once. */
  admit(): Slot | undefined {
    if (this.clients < this.maxClients) {
      this.clients++
      return "client"
    }
    if (this.onProbation < this.peerAllowance) {
      this.onProbation++
      return "probation"
    }
    return undefined
  }

  /** A connection in `slot` said `PEER`: moves it to the peers' allowance if that has room. */
  promote(slot: Slot): Slot {
    if (slot === "peer" || this.peers >= this.peerAllowance) return slot
    this.release(slot)
    this.peers++
    return "peer"
  }

  release(slot: Slot): void {
    if (slot === "client") this.clients--
    else if (slot === "peer") this.peers--
    else this.onProbation--
  }

  get openClients(): number {
    return this.clients
  }
}

/** Links a neighbour may hold at once: one, and room for a reconnect racing the old link's close. */
const linksPerNeighbour = 4

/** The peers' allowance of a server in a herd of `servers`. */
export const peerAllowanceOf = (servers: number): number => linksPerNeighbour * Math.max(1, servers - 1)

/** How long a connection past the client limit has to say `PEER`. */
export const probationMs = 1000
