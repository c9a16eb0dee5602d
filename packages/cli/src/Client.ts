/**
 * `herd client <name>`: stdin to the server, the server's replies to stdout.
 * When stdin ends the session half-closes and waits for the last replies.
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as NodeStream from "@effect/platform-node/NodeStream"
import type { HerdConfigValue } from "@herd/server"
import { HerdServer } from "@herd/server"
import { Effect, Fiber, Stream } from "effect"

export const runClient = (config: HerdConfigValue, name: string) =>
  Effect.gen(function*() {
    const address = config.servers[name]
    if (address === undefined) {
      return yield* new HerdServer.HerdServerError({ server: name, message: "is not a server of the config" })
    }
    const socket = yield* NodeSocket.makeNet({ host: address.host, port: address.port }).pipe(
      Effect.mapError((error) =>
        new HerdServer.HerdServerError({
          server: name,
          message: `cannot be reached at ${address.host}:${address.port}: ${String(error.cause ?? error.reason)}`
        })
      )
    )
    const replies = yield* Effect.fork(socket.run((chunk) => {
      process.stdout.write(chunk)
    }))
    yield* Effect.scoped(Effect.gen(function*() {
      const write = yield* socket.writer
      yield* NodeStream.stdin.pipe(Stream.runForEach(write))
    })).pipe(Effect.catchAll(() => Effect.void))
    yield* Fiber.join(replies).pipe(Effect.catchAll(() => Effect.void))
  })

