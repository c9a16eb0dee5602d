/**
 * Holds slow clients against a server: each sends half a line, then a byte
 * now and then, and never reads. Run it beside a latency measurement
 * (`loadgen iamat --conns 1 --depth 1`) to see that other clients are not
 * slowed down; it prints the server's RSS as it goes.
 *
 *   node --import tsx bench/slow-clients.ts <port> <server pid> [count] [seconds]
 */
import { readFileSync } from "node:fs"
import * as Net from "node:net"

const [portText, pidText, countText = "1000", secondsText = "10"] = process.argv.slice(2)
const port = Number(portText)
const count = Number(countText)
const rss = () => {
  const status = readFileSync(`/proc/${pidText}/status`, "utf8")
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024
}

const sockets: Array<Net.Socket> = []
console.log(`server RSS before: ${rss().toFixed(1)} MiB`)
for (let i = 0; i < count; i++) {
  const socket = Net.connect({ host: "127.0.0.1", port })
  socket.on("error", () => {})
  socket.pause() // never reads
  socket.write(`IAMAT slow-client-${i} +34.068930-`)
  sockets.push(socket)
}
const trickle = setInterval(() => {
  for (const socket of sockets) socket.write("1")
}, 500)
const report = setInterval(() => console.log(`server RSS: ${rss().toFixed(1)} MiB, ${sockets.filter((s) => !s.destroyed).length} slow clients open`), 2000)
setTimeout(() => {
  clearInterval(trickle)
  clearInterval(report)
  console.log(`server RSS after: ${rss().toFixed(1)} MiB`)
  sockets.forEach((socket) => socket.destroy())
}, Number(secondsText) * 1000)
