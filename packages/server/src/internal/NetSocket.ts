import * as NodeSocket from "@effect/platform-node/NodeSocket"
import { Effect, Option } from "effect"

/**
 * The raw socket of a connection, which `NodeSocketServer` provides to each
 * handler; read as an option so that the handler's type does not demand it.
 * The server needs it to pause and resume reading (back-pressure).
 */
export const netSocketOf = Effect.flatMap(
  Effect.serviceOption(NodeSocket.NetSocket),
  (socket) => Option.isSome(socket) ? Effect.succeed(socket.value) : Effect.dieMessage("not a Node TCP connection")
)
