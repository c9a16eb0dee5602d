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

/** A connection on probation, as admission sees it: a way to close it. */
export interface OnProbation {
  readonly evict: () => void
}

export class Admission {
  private clients = 0
  private peers = 0
  /**
   * Connections on probation, oldest first. When they fill the allowance,
   * the oldest makes room for the new one: a stranger who keeps the slots
   * full cannot keep out a neighbour, whose `PEER` comes right after its
   * connect.
   */
  private readonly onProbation = new Set<OnProbation>()

  constructor(readonly maxClients: number, readonly peerAllowance: number) {}

  /** The slot of a new connection. */
  admit(candidate: OnProbation): Slot {
    if (this.clients < this.maxClients) {
      this.clients++
      return "client"
    }
    if (this.onProbation.size >= this.peerAllowance) {
      const oldest = this.onProbation.values().next()
      if (oldest.done !== true) {
        this.onProbation.delete(oldest.value)
        oldest.value.evict()
      }
    }
    this.onProbation.add(candidate)
    return "probation"
  }

  /** A connection in `slot` said `PEER`: moves it to the peers' allowance if that has room. */
  promote(slot: Slot, candidate: OnProbation): Slot {
    if (slot === "peer" || this.peers >= this.peerAllowance) return slot
    this.release(slot, candidate)
    this.peers++
    return "peer"
  }

  release(slot: Slot, candidate: OnProbation): void {
    if (slot === "client") this.clients--
    else if (slot === "peer") this.peers--
    else this.onProbation.delete(candidate)
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
