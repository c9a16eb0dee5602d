/**
 * The baseline: the least a Node server can do per request, so that the
 * bench can print the herd's throughput as a ratio to the Node loop's own
 * ceiling, measured in the same minute with the same client.
 *
 * Plain `node:net`, no validation, no state, no log. Every complete line of a
 * read gets a fixed answer (the client's own fields echoed, as the load
 * client checks them), and all the answers of one read go out in one write:
 *
 *   IAMAT <id> <loc> <time>   ->  AT Baseline +0.000000000 <id> <loc> <time>
 *   WHATSAT <id> ...          ->  AT Baseline +0.000000000 <id> +00.000000+000.000000 0
 *                                 a small JSON body, then an empty line
 *
 *   node --import tsx bench/baseline.ts [port]   (prints "Baseline listening on host:port")
 */
import { createServer } from "node:net"
import type { AddressInfo } from "node:net"

const at = "AT Baseline +0.000000000 "
const body = "{\n   \"html_attributions\": [],\n   \"results\": [],\n   \"status\": \"ZERO_RESULTS\"\n}\n\n"

const server = createServer((socket) => {
  socket.setNoDelay(true)
  socket.setEncoding("latin1")
  let rest = ""
  socket.on("data", (chunk: string) => {
    const data = rest + chunk
    let out = ""
    let pos = 0
    for (let nl = data.indexOf("\n"); nl >= 0; nl = data.indexOf("\n", pos)) {
      const line = data.slice(pos, nl)
      pos = nl + 1
      if (line.startsWith("IAMAT ")) out += `${at}${line.slice(6)}\n`
      else if (line.startsWith("WHATSAT ")) out += `${at}${line.slice(8, line.indexOf(" ", 8))} +00.000000+000.000000 0\n${body}`
      else if (line.trim() !== "") out += `? ${line}\n`
    }
    rest = data.slice(pos)
    if (out !== "") socket.write(out, "latin1")
  })
  socket.on("error", () => socket.destroy())
})

server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
  const { address, port } = server.address() as AddressInfo
  console.log(`Baseline listening on ${address}:${port}`)
})

const stop = (): void => {
  server.close()
  process.exit(0)
}
process.on("SIGINT", stop)
process.on("SIGTERM", stop)
