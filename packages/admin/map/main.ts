/**
 * The live map, in the browser: the world (Natural Earth 110m countries from
 * world-atlas, projected by d3-geo, all bundled: no tile server, no CDN),
 * the herd's servers and links from `map/data`, then server-sent events from
 * `map/events`: `herd` colours each link by the state both its ends report,
 * `clients` adds the client locations the server knows. A click on a client
 * shows its AT line.
 */
import { geoGraticule10, geoNaturalEarth1, geoPath } from "d3-geo"
import { feature, mesh } from "topojson-client"
import countries from "world-atlas/countries-110m.json" with { type: "json" }

interface Layout {
  readonly self: string
  readonly servers: ReadonlyArray<{ readonly name: string; readonly latitude: number; readonly longitude: number; readonly address: string }>
  readonly links: ReadonlyArray<readonly [string, string]>
  readonly clientsLimit: number
}

interface ServerView {
  readonly reachable: boolean
  readonly ready: boolean | null
  readonly count: number | null
  readonly links: Readonly<Record<string, string>>
}

interface MapClient {
  readonly client: string
  readonly latitude: number
  readonly longitude: number
  readonly at: string
}

const svgNs = "http://www.w3.org/2000/svg"

const byId = (id: string): HTMLElement => {
  const element = document.getElementById(id)
  if (element === null) throw new Error(`the page has no #${id}`)
  return element
}

const svgElement = (tag: string, attributes: Record<string, string | number>, parent?: Element): SVGElement => {
  const element = document.createElementNS(svgNs, tag) as SVGElement
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value))
  parent?.appendChild(element)
  return element
}

const map = byId("map")
const summary = byId("summary")
const selected = byId("selected")

const width = 960
const height = 500
const projection = geoNaturalEarth1().fitExtent([[8, 8], [width - 8, height - 8]], { type: "Sphere" })
const path = geoPath(projection)

// The world, drawn once.
const base = svgElement("g", { class: "base" }, map)
svgElement("path", { class: "sphere", d: path({ type: "Sphere" }) ?? "" }, base)
svgElement("path", { class: "graticule", d: path(geoGraticule10()) ?? "" }, base)
svgElement("path", { class: "land", d: path(feature(countries, countries.objects.countries)) ?? "" }, base)
svgElement("path", { class: "borders", d: path(mesh(countries, countries.objects.countries, (a, b) => a !== b)) ?? "" }, base)
const linksLayer = svgElement("g", { class: "links" }, map)
const clientsLayer = svgElement("g", { class: "clients" }, map)
const serversLayer = svgElement("g", { class: "servers" }, map)

let layout: Layout | undefined
let views: Record<string, ServerView> = {}
const clients = new Map<string, MapClient>()
let clientsKnown = 0
let selectedClient: string | undefined
let live = false

/** A link's colour: both ends up, one end up, both down, or no end heard from. */
const linkState = (a: string, b: string): string => {
  const fromA = views[a]?.reachable === true ? views[a]?.links[b] : undefined
  const fromB = views[b]?.reachable === true ? views[b]?.links[a] : undefined
  if (fromA === "up" && fromB === "up") return "up"
  if (fromA === "up" || fromB === "up") return "half"
  if (fromA === undefined && fromB === undefined) return "unknown"
  return "down"
}

const drawHerd = (): void => {
  if (layout === undefined) return
  const positions = new Map(layout.servers.map((server) => [server.name, [server.longitude, server.latitude] as [number, number]]))
  linksLayer.replaceChildren()
  let up = 0
  for (const [a, b] of layout.links) {
    const from = positions.get(a)
    const to = positions.get(b)
    if (from === undefined || to === undefined) continue
    const state = linkState(a, b)
    if (state === "up") up++
    const line = svgElement("path", {
      class: "link",
      "data-a": a,
      "data-b": b,
      "data-state": state,
      d: path({ type: "LineString", coordinates: [from, to] }) ?? ""
    }, linksLayer)
    svgElement("title", {}, line).textContent = `${a} – ${b}: ${state}`
  }
  serversLayer.replaceChildren()
  for (const server of layout.servers) {
    const point = projection([server.longitude, server.latitude])
    if (point === null) continue
    const view = views[server.name]
    const group = svgElement("g", {
      class: "server",
      "data-server": server.name,
      "data-self": String(server.name === layout.self),
      "data-reachable": String(view?.reachable ?? server.name === layout.self),
      transform: `translate(${point[0].toFixed(1)},${point[1].toFixed(1)})`
    }, serversLayer)
    svgElement("circle", { r: 7 }, group)
    // Near the right edge, the name goes on the left of its dot.
    const label = svgElement("text", point[0] > width - 120 ? { x: -10, y: 4, "text-anchor": "end" } : { x: 10, y: 4 }, group)
    label.textContent = view?.count === null || view?.count === undefined ? server.name : `${server.name} (${view.count})`
    svgElement("title", {}, group).textContent = `${server.name} ${server.address}${view?.reachable === false ? ": unreachable" : ""}`
  }
  document.body.dataset["servers"] = String(serversLayer.childElementCount)
  document.body.dataset["linksUp"] = String(up)
  drawSummary(up)
}

const drawSummary = (linksUp?: number): void => {
  if (layout === undefined) return
  const up = linksUp ?? Number(document.body.dataset["linksUp"] ?? 0)
  summary.textContent = `${layout.servers.length} servers, ${up} of ${layout.links.length} links up · ` +
    `${clients.size} of ${clientsKnown} ${clientsKnown === 1 ? "client" : "clients"} shown · ${live ? "live" : "reconnecting…"}`
}

const select = (client: MapClient | undefined): void => {
  selectedClient = client?.client
  selected.textContent = client === undefined ? "" : client.at
  for (const dot of clientsLayer.querySelectorAll(".client")) {
    dot.classList.toggle("selected", dot.getAttribute("data-client") === selectedClient)
  }
}

const drawClients = (): void => {
  clientsLayer.replaceChildren()
  for (const client of clients.values()) {
    const point = projection([client.longitude, client.latitude])
    if (point === null) continue
    const dot = svgElement("circle", {
      class: client.client === selectedClient ? "client selected" : "client",
      "data-client": client.client,
      cx: point[0].toFixed(1),
      cy: point[1].toFixed(1),
      r: 3.5
    }, clientsLayer)
    dot.addEventListener("click", (event) => {
      event.stopPropagation()
      select(client)
    })
  }
  document.body.dataset["clients"] = String(clientsLayer.childElementCount)
  drawSummary()
}

map.addEventListener("click", () => select(undefined))

const start = async (): Promise<void> => {
  const response = await fetch("map/data")
  layout = await response.json() as Layout
  drawHerd()
  const source = new EventSource("map/events")
  source.addEventListener("open", () => {
    live = true
    drawSummary()
  })
  source.addEventListener("error", () => {
    live = false
    drawSummary()
  })
  source.addEventListener("herd", (event) => {
    views = (JSON.parse((event as MessageEvent<string>).data) as { servers: Record<string, ServerView> }).servers
    drawHerd()
  })
  source.addEventListener("clients", (event) => {
    const update = JSON.parse((event as MessageEvent<string>).data) as {
      replace: boolean
      total: number
      clients: ReadonlyArray<MapClient>
    }
    if (update.replace) clients.clear()
    for (const client of update.clients) {
      // Re-inserted, so that the Map's order stays oldest first.
      clients.delete(client.client)
      clients.set(client.client, client)
    }
    const limit = layout?.clientsLimit ?? 3000
    for (const name of clients.keys()) {
      if (clients.size <= limit) break
      clients.delete(name)
    }
    clientsKnown = update.total
    drawClients()
    document.body.dataset["ready"] = "true"
  })
}

start().catch((error: unknown) => {
  summary.textContent = `cannot load the map: ${error instanceof Error ? error.message : String(error)}`
})
